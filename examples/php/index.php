<?php
// SPDX-License-Identifier: GPL-2.0-or-later
//
// berth's PHP example: served by Apache httpd with mod_php from the stack,
// rootless. `/` greets the world; `.htaccess` rewrites `/hello/<name>` to
// `index.php?name=<name>`. The body names PHP's SAPI (apache2handler, never
// the built-in development server) and the uid it runs as (never root).
declare(strict_types=1);

$sapi = PHP_SAPI;
$uid = function_exists('posix_getuid')
    ? posix_getuid()
    : (int)preg_replace('/^.*\nUid:\s+(\d+).*$/s', '$1', (string)file_get_contents('/proc/self/status'));
$name = $_GET['name'] ?? null;

header('Content-Type: text/plain; charset=utf-8');
if ($name === null || $name === '') {
    echo "Hello from berth's PHP example (SAPI {$sapi}, uid {$uid})\n";
} else {
    $name = preg_replace('/[^\w .-]/u', '', $name);
    echo "Hello, {$name}! (SAPI {$sapi}, uid {$uid})\n";
}
