<?php
// SPDX-License-Identifier: GPL-2.0-or-later
//
// A loop that allocates ?mb=N MiB (default 1024), past PHP's own memory_limit:
// the tenant's memory quota is what stops it (the kernel kills the process).
header('Content-Type: text/plain; charset=utf-8');
ini_set('memory_limit', '-1');
$chunks = [];
for ($i = 0; $i < (int)($_GET['mb'] ?? 1024) / 8; $i++) {
    $chunks[] = str_repeat(chr(65 + $i % 26), 8 << 20);
}
echo "survived " . count($chunks) * 8 . " MiB\n";
