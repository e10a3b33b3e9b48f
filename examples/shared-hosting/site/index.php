<?php
// SPDX-License-Identifier: GPL-2.0-or-later
//
// One customer's site on a shared berth host (examples/shared-hosting):
// Apache httpd with mod_php from the php buildpack, in the customer's
// tenant. The other pages are what a careless or hostile customer could
// upload; README.md says what each shows.
header('Content-Type: text/plain; charset=utf-8');
echo "site " . getenv('BERTH_APP_NAME') . " (SAPI " . PHP_SAPI . ")\n";
