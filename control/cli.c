/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/cli: client commands over the control API (see cli.h). libcurl
 * does the HTTP; this file only builds requests and prints answers in the
 * way Heroku's CLI does ("Creating hello... done").
 */
#include "control/cli.h"
#include "control/cli-internal.h"
#include "control/model.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"

#define DEFAULT_URL "http://127.0.0.1:8081"
/* Answers from the API are small; a larger one is a wrong server. */
#define CLI_RESPONSE_MAX (4u << 20)

char *cli_token(void)
{
    const char *env = getenv("BERTH_TOKEN");
    _cleanup_free_ char *home = NULL, *path = NULL;
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;

    if (env && *env)
        return xstrdup(env);
    home = model_default_home();
    path = xasprintf("%s/admin.token", home);
    if (read_file(path, &sb, 4096, NULL) < 0 && geteuid() == 0 && !getenv("BERTH_HOME")) {
        /* root running the CLI against a server that dropped to the berth user */
        struct passwd *pw = getpwnam("berth");

        free(path);
        path = pw ? xasprintf("%s/.local/share/berth/admin.token", pw->pw_dir) : NULL;
        strbuf_reset(&sb);
        if (!path || read_file(path, &sb, 4096, NULL) < 0)
            return NULL;
    }
    strbuf_rtrim(&sb);
    return sb.len ? strbuf_detach(&sb, NULL) : NULL;
}

static size_t collect(char *data, size_t size, size_t n, void *cls)
{
    struct strbuf *sb = cls;

    if (sb->len + size * n > CLI_RESPONSE_MAX)
        return 0;
    strbuf_add(sb, data, size * n);
    return size * n;
}

const char *cli_base_url(void)
{
    const char *base = getenv("BERTH_URL");

    return base && *base ? base : DEFAULT_URL;
}

/*
 * One request to the API: the answer's body goes to `write` (libcurl's
 * write callback) with `write_cls`; timeout_s 0 is none (a stream). < 0
 * when the API could not be reached (already said on stderr).
 */
static int api_perform(const char *method, const char *path, const json_t *body_doc, long timeout_s,
                       size_t (*write)(char *, size_t, size_t, void *), void *write_cls, CURL **ret_curl,
                       long *ret_status)
{
    _cleanup_free_ char *body = body_doc ? json_dumps(body_doc, JSON_COMPACT) : NULL;
    _cleanup_free_ char *url = NULL, *token = cli_token(), *auth = NULL;
    struct curl_slist *headers = NULL;
    CURL *curl;
    CURLcode rc;

    if (!token) {
        fprintf(stderr, "berth: no API token: set BERTH_TOKEN, or BERTH_HOME to the server's data directory\n");
        return -EACCES;
    }
    url = xasprintf("%s%s", cli_base_url(), path);
    auth = xasprintf("Authorization: Bearer %s", token);
    curl = curl_easy_init();
    if (!curl)
        return -ENOMEM;
    if (ret_curl)
        *ret_curl = curl;
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, write_cls);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, timeout_s);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    if (body)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, ret_status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    /* A stream the reader chose to end (stdout closed) is no failure to reach the API. */
    if (rc != CURLE_OK && !(rc == CURLE_WRITE_ERROR && *ret_status == 200)) {
        fprintf(stderr, "berth: cannot reach the berth API at '%s': %s\n", url, curl_easy_strerror(rc));
        return -ECONNREFUSED;
    }
    return 0;
}

int cli_api(const char *method, const char *path, const json_t *body_doc, long *ret_status, json_t **ret_doc)
{
    _cleanup_strbuf_ struct strbuf resp = STRBUF_INIT;
    int r = api_perform(method, path, body_doc, 60L, collect, &resp, NULL, ret_status);

    if (r < 0)
        return r;
    *ret_doc = json_loadb(resp.buf, resp.len, 0, NULL);
    return 0;
}

struct stream_out {
    CURL *curl;
    struct strbuf other;          /* an answer other than 200: the API's error */
};

/* A 200 answer goes to stdout as it arrives; anything else is kept for cli_fail(). */
static size_t stream_write(char *data, size_t size, size_t n, void *cls)
{
    struct stream_out *so = cls;
    long status = 0;

    curl_easy_getinfo(so->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200)
        return collect(data, size, n, &so->other);
    if (fwrite(data, size, n, stdout) != n || fflush(stdout) != 0)
        return 0;
    return size * n;
}

int cli_api_stream(const char *path, long timeout_s, long *ret_status, json_t **ret_doc)
{
    struct stream_out so = { NULL, STRBUF_INIT };
    int r = api_perform("GET", path, NULL, timeout_s, stream_write, &so, &so.curl, ret_status);

    *ret_doc = r == 0 && so.other.len ? json_loadb(so.other.buf, so.other.len, 0, NULL) : NULL;
    strbuf_release(&so.other);
    return r;
}

int cli_fail(long status, const json_t *doc)
{
    const char *msg = doc ? json_get_str(doc, "error") : NULL;

    fprintf(stderr, "berth: %s (HTTP %ld)\n", msg ? msg : "unexpected answer from the API", status);
    return 1;
}

/* `apps:create [NAME]`: without a name, the server picks a free one ("sleepy-meadow-1234"). */
static int apps_create(int argc, char **argv)
{
    const char *name = argc ? argv[0] : NULL;
    _cleanup_json_ json_t *req = name ? json_pack("{s:s}", "name", name) : json_object(), *doc = NULL;
    long status = 0;

    printf("Creating %s... ", name ? name : "app");
    fflush(stdout);
    if (cli_api("POST", "/apps", req, &status, &doc) < 0) {
        printf("failed\n");
        return 1;
    }
    if (status != 201) {
        printf("failed\n");
        return cli_fail(status, doc);
    }
    if (name)
        printf("done\n");
    else
        printf("done, %s\n", json_get_str(doc, "name"));
    printf("%s | %s\n", json_get_str(doc, "web_url"), json_get_str(doc, "git_url"));
    return 0;
}

static int apps_list(int argc, char **argv)
{
    _cleanup_json_ json_t *doc = NULL;
    json_t *app;
    long status = 0;
    size_t i;

    if (argc == 1 && strcmp(argv[0], "--json") != 0) {
        fprintf(stderr, "usage: berth apps [--json]\n");
        return 2;
    }
    if (cli_api("GET", "/apps", NULL, &status, &doc) < 0)
        return 1;
    if (status != 200)
        return cli_fail(status, doc);
    if (argc == 1) {
        cli_print_json(doc);
        return 0;
    }
    printf("=== Apps\n");
    json_array_foreach(json_object_get(doc, "apps"), i, app)
        printf("%s\n", json_get_str(app, "name"));
    return 0;
}

/* The settings part of apps:info: buildpacks, build settings, network. */
static void print_settings(const json_t *doc)
{
    const json_t *bps = json_object_get(doc, "buildpacks");
    const json_t *build = json_object_get(doc, "build");
    const char *key;
    json_t *v;
    size_t i;

    if (json_array_size(bps) == 0)
        printf("Buildpacks:  (detected)\n");
    json_array_foreach(bps, i, v)
        printf("%s%zu. %s\n", i ? "             " : "Buildpacks:  ", i + 1, json_string_value(v));
    json_object_foreach((json_t *)build, key, v) {
        if (json_is_string(v))
            printf("Build %-6s %s\n", key, json_string_value(v));
        else if (json_is_integer(v))
            printf("Build %-6s %lld\n", key, (long long)json_integer_value(v));
    }
    printf("Outbound:    %s\n",
           json_is_true(json_object_get(json_object_get(doc, "net"), "outbound")) ? "on" : "off");
    json_array_foreach(json_object_get(doc, "domains"), i, v)
        printf("%s%s\n", i ? "             " : "Domains:     ", json_string_value(v));
}

static int apps_info(int argc, char **argv)
{
    const char *name = argv[0];
    _cleanup_json_ json_t *doc = NULL;
    int r = cli_app_show(argc, argv, "apps:info APP [--json]", "", &doc);

    if (r || !doc)
        return r;
    printf("=== %s\nGit URL:     %s\nWeb URL:     %s\nRelease:     v%lld\n", name,
           json_get_str(doc, "git_url"), json_get_str(doc, "web_url"),
           json_integer_value(json_object_get(doc, "release")));
    print_settings(doc);
    return 0;
}

/* Descriptions and groups for `berth help` are in cli-help.c, keyed by name. */
static const struct cli_command commands[] = {
    { "apps:create", 0, 1, "apps:create [NAME]", apps_create },
    { "create", 0, 1, "create [NAME]", apps_create },
    { "apps:destroy", 1, 3, "apps:destroy APP --confirm APP", cli_apps_destroy },
    { "destroy", 1, 3, "destroy APP --confirm APP", cli_apps_destroy },
    { "apps", 0, 1, "apps [--json]", apps_list },
    { "apps:list", 0, 1, "apps:list [--json]", apps_list },
    { "apps:info", 1, 2, "apps:info APP [--json]", apps_info },
    { "tenants", 0, 1, "tenants [--json]", cli_tenants_list },
    { "tenants:list", 0, 1, "tenants:list [--json]", cli_tenants_list },
    { "tenants:create", 1, 1, "tenants:create NAME", cli_tenants_create },
    { "tenants:destroy", 1, 3, "tenants:destroy NAME --confirm NAME", cli_tenants_destroy },
    { "tokens", 0, 1, "tokens [--json]", cli_tokens },
    { "tokens:create", 2, 4, "tokens:create [--app APP] --role deploy|read", cli_tokens_create },
    { "tokens:revoke", 1, 1, "tokens:revoke ID", cli_tokens_revoke },
    { "tokens:rotate", 0, 0, "tokens:rotate", cli_tokens_rotate },
    { "keys", 0, 1, "keys [--json]", cli_keys },
    { "keys:add", 1, 2, "keys:add [TENANT] KEYFILE|-", cli_keys_add },
    { "keys:remove", 1, 1, "keys:remove FINGERPRINT", cli_keys_remove },
    { "git:clone", 1, 2, "git:clone APP [DIR]", cli_git_clone },
    { "buildpacks", 1, 2, "buildpacks APP [--json]", cli_buildpacks },
    { "buildpacks:set", 2, -1, "buildpacks:set APP URL|NAME[#REF]...", cli_buildpacks_set },
    { "buildpacks:clear", 1, 1, "buildpacks:clear APP", cli_buildpacks_clear },
    { "builds:set", 2, -1, "builds:set APP dir=PATH|memory=SIZE|disk=SIZE|timeout=DURATION...",
      cli_builds_set },
    { "builds:cache:purge", 1, 1, "builds:cache:purge APP", cli_builds_cache_purge },
    { "repo:purge-cache", 1, 1, "repo:purge-cache APP", cli_builds_cache_purge },
    { "net", 1, 2, "net APP [--json]", cli_net },
    { "net:set", 2, 2, "net:set APP outbound=on|off", cli_net_set },
    { "config", 1, 2, "config APP [--json]", cli_config },
    { "config:get", 2, 2, "config:get APP NAME", cli_config_get },
    { "config:set", 2, -1, "config:set APP [--no-restart|--preview] NAME=VALUE...", cli_config_set },
    { "config:unset", 2, -1, "config:unset APP [--no-restart|--preview] NAME...", cli_config_unset },
    { "domains", 1, 2, "domains APP [--json]", cli_domains },
    { "domains:add", 2, 2, "domains:add APP NAME", cli_domains_add },
    { "domains:remove", 2, 2, "domains:remove APP NAME", cli_domains_remove },
    { "certs", 1, 2, "certs APP [--json]", cli_certs },
    { "certs:add", 3, 3, "certs:add APP CERT_FILE KEY_FILE", cli_certs_add },
    { "certs:remove", 2, 2, "certs:remove APP ID", cli_certs_remove },
    { "releases", 1, 2, "releases APP [--json]", cli_releases },
    { "rollback", 1, 2, "rollback APP [vN]", cli_rollback },
    { "cron", 1, 2, "cron APP [--json]", cli_cron },
    { "events", 0, 2, "events [APP] [--json]", cli_events },
    { "gc", 0, 4, "gc [--dry-run] [--keep N] [--json]", cli_gc },
    { "checks", 1, 2, "checks APP [--json]", cli_checks },
    { "ps", 1, 2, "ps APP [--json]", cli_ps },
    { "ps:scale", 2, -1, "ps:scale APP TYPE=COUNT...", cli_ps_scale },
    { "ps:restart", 1, 2, "ps:restart APP [TYPE]", cli_ps_restart },
    { "ps:stop", 1, 2, "ps:stop APP [run.N]", cli_ps_stop },
    { "ps:start", 1, 1, "ps:start APP", cli_ps_start },
    { "logs", 1, 8, "logs APP [-t] [-n N] [-p TYPE|DYNO] [--source app|router]", cli_logs },
    { "ps:grace", 1, 2, "ps:grace APP [SECONDS|default|--json]", cli_ps_grace },
    { "checks:enable", 1, 1, "checks:enable APP", cli_checks_enable },
    { "checks:disable", 1, 1, "checks:disable APP", cli_checks_disable },
    { "checks:skip", 1, 1, "checks:skip APP", cli_checks_skip },
    { "router", 1, 2, "router APP [--json]", cli_router },
    { "router:set", 2, -1, "router:set APP timeout=SECONDS|connect_timeout=SECONDS|idle_timeout=SECONDS|"
      "https_only=on|off|maintenance=on|off...", cli_router_set },
    { "maintenance", 1, 2, "maintenance APP [--json]", cli_maintenance },
    { "maintenance:on", 1, 1, "maintenance:on APP", cli_maintenance_on },
    { "maintenance:off", 1, 1, "maintenance:off APP", cli_maintenance_off },
    { "run", 2, -1, "run APP [--] COMMAND...", cli_run_attached },
    { "run:detached", 2, -1, "run:detached APP [--json] [--] COMMAND...", cli_run_detached },
    { "tenants:limits", 1, -1, "tenants:limits NAME [--memory SIZE] [--cpus N] [--pids N] [--apps N] "
      "[--instances N] [--json]", cli_tenants_limits },
    { "pipelines", 0, 2, "pipelines [NAME] [--json]", cli_pipelines },
    { "pipelines:create", 1, 2, "pipelines:create NAME [--json]", cli_pipelines_create },
    { "pipelines:add", 4, 5, "pipelines:add NAME APP --stage development|review|staging|production [--json]",
      cli_pipelines_add },
    { "pipelines:remove", 2, 3, "pipelines:remove NAME APP [--json]", cli_pipelines_remove },
    { "pipelines:destroy", 3, 4, "pipelines:destroy NAME --confirm NAME [--json]", cli_pipelines_destroy },
    { "pipelines:promote", 1, -1, "pipelines:promote APP [--to APP...] [--json]", cli_pipelines_promote },
    { "pipelines:diff", 1, 4, "pipelines:diff APP [--to APP] [--json]", cli_pipelines_diff },
    { "pipelines:previews", 2, 5, "pipelines:previews NAME on|off [--idle DURATION] [--json]",
      cli_pipelines_previews },
    { "config:copy", 2, -1, "config:copy FROM TO [NAME...] [--json]", cli_config_copy },
    { "resource", 1, 2, "resource APP [--json]", cli_resource },
    { "resource:limit", 2, -1, "resource:limit APP [--type TYPE] [--memory SIZE] [--cpus N] [--pids N] [--json]",
      cli_resource_limit },
};

int cli_help(FILE *f, const char *command)
{
    return cli_help_print(f, command, commands, sizeof(commands) / sizeof(*commands));
}

/*
 * Whether the arguments ask for help: --help or -h first, or --help
 * anywhere before "--" for a command with a bounded argument count (one
 * taking a command line, such as `run`, passes the rest on as it is).
 */
static bool wants_help(const struct cli_command *c, int argc, char **argv)
{
    if (argc > 0 && (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0))
        return true;
    for (int i = 0; c->max_args >= 0 && i < argc && strcmp(argv[i], "--") != 0; i++)
        if (strcmp(argv[i], "--help") == 0)
            return true;
    return false;
}

int cli_run(const char *command, int argc, char **argv)
{
    int r = 2;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (size_t i = 0; i < sizeof(commands) / sizeof(*commands); i++) {
        const struct cli_command *c = &commands[i];

        if (strcmp(command, c->name) != 0)
            continue;
        if (wants_help(c, argc, argv))
            r = cli_help(stdout, c->name);
        else if (argc < c->min_args || (c->max_args >= 0 && argc > c->max_args))
            fprintf(stderr, "usage: berth %s\n(berth help %s for more)\n", c->usage, c->name);
        else
            r = c->run(argc, argv);
        curl_global_cleanup();
        return r;
    }
    fprintf(stderr, "berth: unknown command '%s' (see 'berth help')\n", command);
    curl_global_cleanup();
    return r;
}
