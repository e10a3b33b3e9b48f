/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/server: `berth serve`, the daemon (see server.h). Start-up order
 * matters: the runner's spawner is forked while the process is still
 * single-threaded (only such a process may enter a new user namespace), then
 * the router and the control API start their threads, then every app's
 * current release is brought back up. SIGINT or SIGTERM stops it all in the
 * reverse order, and with the daemon gone every container is gone too.
 */
#include "control/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/api.h"
#include "control/applog.h"
#include "control/deploy.h"
#include "control/formation.h"
#include "control/destroy.h"
#include "control/gc.h"
#include "control/git-shell.h"
#include "control/instance.h"
#include "control/scheduler.h"
#include "control/run.h"
#include "control/quota.h"
#include "control/serve.h"
#include "control/subid.h"
#include "control/tenants.h"
#include "control/units.h"
#include "receiver/receiver.h"

/* How long apps:destroy waits for retiring instances: twice the default grace, and a little. */
#define SERVER_RETIRED_WAIT_S 65

struct app_runtime *server_app(struct server *s, const char *name)
{
    struct app_runtime *rt;

    pthread_mutex_lock(&s->lock);
    for (rt = s->apps; rt; rt = rt->next)
        if (strcmp(rt->name, name) == 0)
            break;
    if (!rt) {
        rt = xcalloc(1, sizeof(*rt));
        rt->name = xstrdup(name);
        pthread_mutex_init(&rt->deploy_lock, NULL);
        pthread_mutex_init(&rt->formation_lock, NULL);
        rt->next = s->apps;
        s->apps = rt;
    }
    pthread_mutex_unlock(&s->lock);
    return rt;
}

/*
 * Waits until no instance is retiring (instance_retire()), at most `secs`:
 * retiring instances are not listed per app, so this waits for every
 * app's. A retiring one takes its grace period at most twice (drain, then
 * SIGTERM to SIGKILL), a few seconds in practice once its route is gone.
 */
static void wait_retired(struct server *s, int secs)
{
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += secs;
    pthread_mutex_lock(&s->retire_lock);
    while (s->retiring && pthread_cond_timedwait(&s->retire_cond, &s->retire_lock, &deadline) == 0)
        ;
    if (s->retiring)
        log_warn("%u instances still retiring after %d s", s->retiring, secs);
    pthread_mutex_unlock(&s->retire_lock);
}

void server_app_stop_all(struct server *s, const char *name)
{
    formation_remove_app(s, name);
    run_stop_app(s, name);
    scheduler_stop_app(s, name);
    wait_retired(s, SERVER_RETIRED_WAIT_S);
}

bool server_app_owned_by(struct server *s, const char *app, const char *tenant)
{
    _cleanup_json_ json_t *record = NULL;
    const char *owner;

    if (model_app_load(&s->model, app, &record, NULL) < 0)
        return false;
    owner = json_get_str(record, "tenant");
    return owner && strcmp(owner, tenant) == 0;
}

char *server_slug_dir(const struct server *s, const char *tenant, const char *slug)
{
    char *dir = xasprintf("%s/%s/%s", s->layers_dir, tenant, slug);
    char *legacy;

    if (access(dir, F_OK) == 0)
        return dir;
    legacy = xasprintf("%s/%s", s->layers_dir, slug);
    if (access(legacy, F_OK) == 0) {
        free(dir);
        return legacy;
    }
    free(legacy);
    return dir;
}

int server_tenant_ids(struct server *s, const char *tenant, unsigned long *ret_uid_base,
                      unsigned long *ret_gid_base, struct berth_error **err)
{
    unsigned long slice;
    int r = model_tenant_slice(&s->model, tenant, &slice, err);

    if (r < 0)
        return r;
    r = subid_slice(SUBUID_FILE, s->user, getuid(), slice, TENANT_ID_SLICE, ret_uid_base, err);
    if (r < 0)
        return r;
    return subid_slice(SUBGID_FILE, s->user, getuid(), slice, TENANT_ID_SLICE, ret_gid_base, err);
}

unsigned long server_tenant_slices(const struct server *s)
{
    unsigned long u = subid_count_slices(SUBUID_FILE, s->user, getuid(), TENANT_ID_SLICE);
    unsigned long g = subid_count_slices(SUBGID_FILE, s->user, getuid(), TENANT_ID_SLICE);

    return u < g ? u : g;
}

int server_parse_addr(const char *addr, struct sockaddr_in *ret, struct berth_error **err)
{
    const char *colon = strrchr(addr, ':');
    _cleanup_free_ char *host = NULL;
    char *end;
    unsigned long port;

    if (!colon)
        return berth_error_plain(err, EINVAL, "address '%s' must be HOST:PORT", addr);
    host = xstrndup(addr, (size_t)(colon - addr));
    port = strtoul(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port > 65535)
        return berth_error_plain(err, EINVAL, "address '%s' has an invalid port", addr);
    memset(ret, 0, sizeof(*ret));
    ret->sin_family = AF_INET;
    ret->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        ret->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &ret->sin_addr) != 1)
        return berth_error_plain(err, EINVAL, "address '%s' needs an IPv4 address", addr);
    return 0;
}

/* BERTH_ROUTER_ACCESS_LOG=0 turns the router's line per request off (benchmarks, or a front that logs). */
static bool router_log_off(void)
{
    const char *v = getenv("BERTH_ROUTER_ACCESS_LOG");

    return v && strcmp(v, "0") == 0;
}

/* Set by the signal handler, read by the main thread's wait loop. */
static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static int write_serve_file(struct server *s, struct berth_error **err)
{
    _cleanup_free_ char *path = model_path(&s->model, "run/serve.json");
    _cleanup_free_ char *http = xasprintf("127.0.0.1:%u", s->http_port);
    _cleanup_json_ json_t *doc = json_pack("{s:i, s:s, s:s, s:s, s:i, s:i}", "pid", (int)getpid(),
                                           "router", http, "control_url", s->control_url,
                                           "domain", s->opt.domain, "http_port", (int)s->http_port,
                                           "control_port", (int)s->control_port);

    /* Present only with --https, so a reader can tell "no listener" from port 0. */
    if (doc && s->https_port)
        json_object_set_new(doc, "https_port", json_integer(s->https_port));
    return json_store_save(path, doc, 0600, err);
}

static void print_quick_start(struct server *s, const char *token)
{
    printf("\nberth is ready.\n\n"
           "  router        http://<app>.%s:%u/\n"
           "  control API   %s\n"
           "  data          %s\n", s->opt.domain, s->http_port, s->control_url, s->opt.home);
    if (token)
        printf("  admin token   %s  (saved in %s/admin.token)\n", token, s->opt.home);
    printf("\nQuick start, in another shell:\n\n"
           "  build/berth apps:create hello\n"
           "  cp -r examples/static /tmp/hello && cd /tmp/hello\n"
           "  git init -q -b main && git add -A && git commit -qm init\n"
           "  git push http://berth:$(cat %s/admin.token)@127.0.0.1:%u/hello.git main\n"
           "  curl http://hello.%s:%u/\n\n", s->opt.home, s->control_port, s->opt.domain, s->http_port);
    fflush(stdout);
}

/* One "builds" setting: a number, or a string with a unit ("1G", "15m"). */
static int budget_value(const json_t *builds, const char *key, bool duration, uint64_t *ret,
                        struct berth_error **err)
{
    const json_t *v = json_object_get(builds, key);
    unsigned secs;

    if (!v)
        return 0;
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        *ret = (uint64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && !duration && units_parse_size(json_string_value(v), ret))
        return 0;
    if (json_is_string(v) && duration && units_parse_duration(json_string_value(v), &secs)) {
        *ret = secs;
        return 0;
    }
    return berth_error_plain(err, EINVAL, "berth.json: builds.%s must be a positive %s", key,
                             duration ? "duration (\"15m\", or seconds)" : "size (\"1G\", or bytes)");
}

/* berth.json's "builds": what every build may use unless an app's own settings say otherwise. */
static int load_build_budget(struct server *s, struct berth_error **err)
{
    _cleanup_json_ json_t *settings = NULL;
    struct build_budget *b = &s->build_budget;
    const json_t *builds;
    uint64_t timeout = 0;
    int r;

    r = model_settings_load(&s->model, &settings, err);
    if (r < 0)
        return r;
    builds = json_object_get(settings, "builds");
    if (!builds)
        return 0;
    if (!json_is_object(builds))
        return berth_error_plain(err, EINVAL, "berth.json: builds must be an object");
    if ((r = budget_value(builds, "memory", false, &b->memory_bytes, err)) < 0 ||
        (r = budget_value(builds, "disk", false, &b->disk_bytes, err)) < 0 ||
        (r = budget_value(builds, "cpu_weight", false, &b->cpu_weight, err)) < 0 ||
        (r = budget_value(builds, "pids", false, &b->pids_max, err)) < 0 ||
        (r = budget_value(builds, "timeout", true, &timeout, err)) < 0)
        return r;
    if (b->cpu_weight > 10000)
        return berth_error_plain(err, EINVAL, "berth.json: builds.cpu_weight must be 1 to 10000");
    b->timeout_s = (unsigned)(timeout > 24 * 3600 ? 24 * 3600 : timeout);
    return 0;
}

/* A limit the host cannot hold stops the start, unless the operator allows running without it. */
static int refuse_or_warn(const struct server *s, const char *what, struct berth_error **err)
{
    if (!s->opt.allow_no_limits)
        return berth_error_wrap(err, "%s cannot be enforced (start with --allow-no-limits to run without them)",
                                what);
    log_warn("running WITHOUT %s: %s", what, berth_error_msg(err));
    berth_error_release(err);
    return 0;
}

/*
 * Whether the kernel can hold berth's limits (ARCHITECTURE.md, Tenants and
 * isolation): delegated memory and pids cgroups, cpu quotas, and every
 * tenant's cgroup with its limits written. s->cgroups and s->cpu_quota
 * say what holds.
 */
static int check_limits(struct server *s, struct berth_error **err)
{
    if (runner_cgroup_check(err) < 0)
        return refuse_or_warn(s, "memory, cpu and pids limits", err);
    s->cgroups = true;
    if (runner_cgroup_check_cpu_quota(err) < 0) {
        if (refuse_or_warn(s, "cpu quotas", err) < 0)
            return -EOPNOTSUPP;
    } else {
        s->cpu_quota = true;
    }
    if (quota_apply_all(s, err) < 0) {
        s->cgroups = s->cpu_quota = false;
        return refuse_or_warn(s, "tenants' limits", err) < 0 ? -EOPNOTSUPP : 0;
    }
    return 0;
}

/* The subordinate ids, the limits the kernel can hold, and outbound network (optional). */
static int serve_check_host(struct server *s, struct berth_error **err)
{
    unsigned long base;
    int r;

    r = subid_slice(SUBUID_FILE, s->user, getuid(), 0, TENANT_ID_SLICE, &base, err);
    if (r < 0)
        return r;
    r = check_limits(s, err);
    if (r < 0)
        return r;
    r = runner_network_check(err);
    if (r < 0) {
        log_warn("no outbound network for builds and apps: %s", berth_error_msg(err));
        berth_error_release(err);
    } else {
        s->network = true;
    }
    return 0;
}

/*
 * Everything before the first thread: the stop signals, the locks, the
 * home (model, token, stack, buildpacks) and what the host can hold.
 * *ret_token: the admin token when this start made it (for the quick start).
 */
static int serve_prepare(struct server *s, char **ret_token, struct berth_error **err)
{
    struct sigaction sa = { .sa_handler = on_stop_signal };
    struct passwd *pw = getpwuid(getuid());
    int r;

    /* First of all: a SIGTERM during the restore ends it early and stops cleanly. */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->records_lock, NULL);
    pthread_mutex_init(&s->publish_lock, NULL);
    pthread_mutex_init(&s->retire_lock, NULL);
    pthread_cond_init(&s->retire_cond, NULL);
    s->runs = run_registry_new();
    s->user = xstrdup(pw ? pw->pw_name : "berth");
    r = model_open(&s->model, s->opt.home, err);
    if (r < 0)
        return r;
    r = model_init_home(&s->model, ret_token, err);
    if (r < 0)
        return berth_error_wrap(err, "preparing '%s'", s->opt.home);
    /* Two tenants in one slice would share host uids: refuse to serve either. */
    r = tenants_check_slices(&s->model, err);
    if (r < 0)
        return r;
    s->layers_dir = model_path(&s->model, "layers");
    s->stack_dir = model_path(&s->model, "layers/stacks/host");
    s->buildpacks_dir = model_path(&s->model, "buildpacks");
    s->fetch_cache_dir = model_path(&s->model, "cache/buildpacks");
    {
        /* Where the stack lived before slugs were kept per tenant; it is berth's own. */
        _cleanup_free_ char *old_stack = model_path(&s->model, "layers/stack-host");

        (void)rm_rf(old_stack, NULL);
    }
    r = load_build_budget(s, err);
    if (r < 0)
        return r;
    /* NULL when main() already installed them before dropping root. */
    if (s->opt.buildpacks_src) {
        r = serve_install_buildpacks(s->opt.buildpacks_src, s->buildpacks_dir, err);
        if (r < 0)
            return r;
    }
    r = runner_stack_prepare(s->stack_dir, err);
    if (r < 0)
        return berth_error_wrap(err, "preparing the host stack");
    return serve_check_host(s, err);
}

/* The router on the options' addresses, its access log into the apps' logs. */
static int serve_start_router(struct server *s, struct berth_error **err)
{
    struct router_config rc = { 0 };
    int r;

    rc.listen_addr = s->opt.http_addr;
    rc.https_addr = s->opt.https_addr;
    rc.backend_ops = &instance_backend_ops;
    rc.no_access_log = router_log_off();
    rc.access_log = applog_router_lines;
    rc.access_log_cls = s->applog;
    r = router_start(&rc, &s->router, err);
    if (r < 0)
        return r;
    s->http_port = router_port(s->router);
    s->https_port = router_https_port(s->router);
    return 0;
}

/*
 * After the spawner: the threads and listeners, each after what it needs,
 * then the apps restored and the serve file written. On failure, whatever
 * started is stopped by serve_stop().
 */
static int serve_start(struct server *s, struct berth_error **err)
{
    int r;

    /* Process-wide, before threads: a closed client must not kill the daemon. */
    signal(SIGPIPE, SIG_IGN);
    r = receiver_global_init(err);
    if (r < 0)
        return r;
    /* After the spawner (a thread): the apps' logs, before anything writes to them. */
    r = applog_start(s->opt.home, 0, &s->applog, err);
    if (r < 0)
        return r;
    r = serve_start_router(s, err);
    if (r < 0)
        return r;
    /* Every app answers from the start: H81 before its first release, H14 until it boots. */
    r = server_publish_routes(s, err);
    if (r < 0)
        return r;
    r = api_start(s, err);
    if (r < 0)
        return r;
    /* git and berth commands over ssh (git-shell.h); without it only smart HTTP works. */
    {
        _cleanup_error_ struct berth_error *gerr = NULL;

        if (gitshell_start(s, &gerr) < 0)
            log_warn("no git over ssh: %s", berth_error_msg(&gerr));
    }
    r = formation_supervisor_start(s, err);
    if (r < 0)
        return r;
    r = gc_schedule_start(s, err);
    if (r < 0)
        return r;
    gc_sweep_leftovers(s);
    destroy_sweep_leftovers(s);
    deploy_restore_all(s, &stop_requested);
    r = scheduler_start(s, err);
    if (r < 0)
        return r;
    return write_serve_file(s, err);
}

/* Stops what serve_start() started, however far it got, in an order that frees nothing in use. */
static void serve_stop(struct server *s)
{
    /* One-off runs hold API connections (attached) and the runner's containers: they end first. */
    run_stop_all(s);
    /* `logs -t` answers end first, or the API's stop would wait for them. */
    applog_end_follows(s->applog);
    /* No restart may start an instance once the stop began. */
    formation_supervisor_stop(s);
    gc_schedule_stop(s);
    gitshell_stop(s);
    api_stop(s);
    /* Before the runner goes: its runs are containers, stopped now. */
    scheduler_stop(s);
    /* The router first: its tables hold the instances, which are freed only once let go. */
    if (s->router)
        router_stop(s->router);
    s->router = NULL;
    /* Retiring instances drain at once now that no table holds them; their threads end before the runner goes. */
    pthread_mutex_lock(&s->retire_lock);
    while (s->retiring)
        pthread_cond_wait(&s->retire_cond, &s->retire_lock);
    pthread_mutex_unlock(&s->retire_lock);
    formation_stop_everything(s);
    /* Last of the writers: the instances' pumps are finished, the router's lines handed over. */
    applog_stop(s->applog);
    s->applog = NULL;
    /*
     * runner_free() returns once the spawner has reaped every container and
     * pasta and removed their cgroups. Only then can the apps' and tenants'
     * empty cgroups go (the next start makes the tenants' again): a pasta
     * takes 20-40 ms to die after its init, and until then its instance's
     * cgroup kept the app's busy, which stayed behind.
     */
    if (s->runner)
        runner_free(s->runner);
    s->runner = NULL;
    quota_release_all(s);
    run_registry_free(s->runs);
    {
        _cleanup_free_ char *serve_file = model_path(&s->model, "run/serve.json");

        (void)unlink(serve_file);
    }
}

int server_run(const struct server_options *opt, struct berth_error **err)
{
    struct server s = { .opt = *opt };
    _cleanup_free_ char *token = NULL;
    int r;

    r = serve_prepare(&s, &token, err);
    if (r < 0)
        return r;
    /* Before any thread: the spawner must be forked from a single-threaded process. */
    r = runner_spawner_start(&s.runner, err);
    if (r < 0)
        return r;
    r = serve_start(&s, err);
    if (r == 0) {
        if (s.https_port)
            log_info("serving: router 127.0.0.1:%u (https %u), control %s, home %s", s.http_port,
                     s.https_port, s.control_url, opt->home);
        else
            log_info("serving: router 127.0.0.1:%u, control %s, home %s", s.http_port, s.control_url,
                     opt->home);
        print_quick_start(&s, token);
        /* Polled: the signal may be delivered to any thread, not only this one. */
        while (!stop_requested)
            sleep(1);
        log_info("stopping");
    }
    serve_stop(&s);
    return r;
}
