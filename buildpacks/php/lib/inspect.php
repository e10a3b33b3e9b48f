<?php
// SPDX-License-Identifier: GPL-2.0-or-later
//
// berth PHP buildpack: reads BUILD_DIR/composer.json (and composer.lock)
// once for bin/compile and prints what it needs as `key<TAB>value` lines:
// whether Composer has packages to install, the ones that would come from a
// remote repository, the local `path` repositories, the PHP extensions
// required but not loaded. Prints `error<TAB>...` when composer.json is not
// valid JSON. Usage: php inspect.php BUILD_DIR
declare(strict_types=1);

$dir = $argv[1] ?? '.';
$put = function (string $k, $v): void {
    echo $k, "\t", trim(preg_replace('/\s+/', ' ', (string)$v)), "\n";
};
// Requirements Composer does not install: PHP itself, its extensions and
// libraries, and Composer's own APIs.
$platform = function (string $name): bool {
    return $name === 'php' || strncmp($name, 'php-', 4) === 0 || strncmp($name, 'ext-', 4) === 0
        || strncmp($name, 'lib-', 4) === 0 || $name === 'composer-plugin-api'
        || $name === 'composer-runtime-api' || $name === 'composer';
};

$text = @file_get_contents("$dir/composer.json");
if ($text === false) {
    $put('error', 'cannot read composer.json');
    exit(0);
}
$json = json_decode($text, true);
if (!is_array($json)) {
    $put('error', json_last_error() !== JSON_ERROR_NONE ? json_last_error_msg() : 'the top level is not an object');
    exit(0);
}

$require = is_array($json['require'] ?? null) ? $json['require'] : [];
$packages = array_values(array_filter(array_keys($require), fn($n) => !$platform((string)$n)));
$put('packages', count($packages));
$put('php_constraint', is_string($require['php'] ?? null) ? $require['php'] : '');
$put('has_autoload', isset($json['autoload']) ? 1 : 0);

// Local `path` repositories: the packages they provide and their dirs.
$local = [];
$paths = [];
foreach ((is_array($json['repositories'] ?? null) ? $json['repositories'] : []) as $repo) {
    if (!is_array($repo) || ($repo['type'] ?? '') !== 'path' || !is_string($repo['url'] ?? null)) {
        continue;
    }
    $url = $repo['url'];
    foreach (glob(($url[0] === '/' ? $url : "$dir/$url"), GLOB_ONLYDIR) ?: [] as $pkgdir) {
        $paths[] = $pkgdir;
        $pj = json_decode((string)@file_get_contents("$pkgdir/composer.json"), true);
        if (is_array($pj) && is_string($pj['name'] ?? null)) {
            $local[strtolower($pj['name'])] = true;
        }
    }
}
$put('path_repos', implode(' ', array_map('escapeshellarg', $paths)));

// What would come from a remote repository: from the lock file when there
// is one (everything it installs), else the direct requirements.
$remote = [];
$lock = json_decode((string)@file_get_contents("$dir/composer.lock"), true);
if (is_array($lock) && is_array($lock['packages'] ?? null)) {
    foreach ($lock['packages'] as $p) {
        if (is_array($p) && is_string($p['name'] ?? null) && ($p['dist']['type'] ?? '') !== 'path') {
            $remote[] = $p['name'];
        }
    }
} else {
    foreach ($packages as $name) {
        if (!isset($local[strtolower((string)$name)])) {
            $remote[] = $name;
        }
    }
}
$put('remote', implode(' ', $remote));

$missing = [];
foreach (array_keys($require) as $name) {
    if (strncmp((string)$name, 'ext-', 4) === 0 && !extension_loaded(substr((string)$name, 4))) {
        $missing[] = substr((string)$name, 4);
    }
}
$put('missing_ext', implode(' ', $missing));
$put('php_version', PHP_VERSION);
