<?php
// SPDX-License-Identifier: GPL-2.0-or-later
//
// A fork storm: starts `sleep 60` with proc_open until it fails (or ?n=N,
// default 5000), says how many it got, then kills them. The tenant's
// process quota (pids.max) is what stops it.
header('Content-Type: text/plain; charset=utf-8');
$procs = [];
$error = 'none';
for ($i = 0; $i < (int)($_GET['n'] ?? 5000); $i++) {
    $p = @proc_open(['sleep', '60'], [], $pipes);
    if ($p === false) {
        $error = error_get_last()['message'] ?? 'proc_open failed';
        break;
    }
    $procs[] = $p;
}
echo "forked=" . count($procs) . " error=$error\n";
foreach ($procs as $p) {
    proc_terminate($p, 9);
}
foreach ($procs as $p) {
    proc_close($p);
}
