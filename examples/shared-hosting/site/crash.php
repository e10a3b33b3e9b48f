<?php
// SPDX-License-Identifier: GPL-2.0-or-later
//
// Crashes the site: SIGKILL to Apache's parent process, so the web process
// exits and berth's supervisor has to start it again.
header('Content-Type: text/plain; charset=utf-8');
$stat = (string)file_get_contents('/proc/self/stat');
$ppid = (int)explode(' ', substr($stat, strrpos($stat, ')') + 2))[1];
echo "killing Apache's parent, pid $ppid\n";
// Out before the kill: PHP's own output buffer first (php.ini's
// output_buffering), which flush() alone leaves, then Apache's.
while (ob_get_level() > 0)
    ob_end_flush();
flush();
posix_kill($ppid, 9);
