/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/model: the records under berth's home (see model.h for the layout).
 */
#include "control/model.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"


char *model_default_home(void)
{
    const char *env = getenv("BERTH_HOME");
    const char *home = getenv("HOME");

    if (env && *env)
        return xstrdup(env);
    return xasprintf("%s/.local/share/berth", home && *home ? home : "/");
}

int model_open(struct model *m, const char *home, struct berth_error **err)
{
    _cleanup_free_ char *real = NULL;
    char hex[SHA256_HEX_LEN + 1];

    if (!home || home[0] != '/')
        return berth_error_plain(err, EINVAL, "home '%s' must be an absolute path", home ? home : "");
    m->home = xstrdup(home);
    /* The real path: the same key however the home was named (a trailing slash, a symlink). */
    real = realpath(home, NULL);
    sha256_hex(real ? real : home, strlen(real ? real : home), hex);
    memcpy(m->home_key, hex, MODEL_HOME_KEY_LEN);
    m->home_key[MODEL_HOME_KEY_LEN] = '\0';
    return 0;
}

void model_close(struct model *m)
{
    free(m->home);
    m->home = NULL;
}

char *model_path(const struct model *m, const char *fmt, ...)
{
    _cleanup_strbuf_ struct strbuf sb = STRBUF_INIT;
    va_list ap;

    strbuf_addstr(&sb, m->home);
    strbuf_addch(&sb, '/');
    va_start(ap, fmt);
    strbuf_vaddf(&sb, fmt, ap);
    va_end(ap);
    return strbuf_detach(&sb, NULL);
}

void model_time_format(time_t t, char buf[MODEL_TIME_LEN + 1])
{
    struct tm tm;

    /* A year past 9999 does not fit: an empty string rather than garbage. */
    if (!gmtime_r(&t, &tm) || strftime(buf, MODEL_TIME_LEN + 1, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        buf[0] = '\0';
}

static char *now_iso8601(void)
{
    char buf[MODEL_TIME_LEN + 1];

    model_time_format(time(NULL), buf);
    return xstrdup(buf);
}

int model_init_home(struct model *m, char **ret_created_token, struct berth_error **err)
{
    static const char *const dirs[] = { "", "tenants", "apps", "layers", "layers/stacks", "cache",
                                        "cache/buildpacks", "run", "run/instances", "run/builds" };
    _cleanup_free_ char *settings = model_path(m, "berth.json");
    _cleanup_free_ char *tenant_path = model_path(m, "tenants/%s.json", MODEL_ADMIN_TENANT);
    _cleanup_free_ char *token_path = model_path(m, "admin.token");
    char token[65], hash[SHA256_HEX_LEN + 1];
    int r;

    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        _cleanup_free_ char *d = model_path(m, "%s", dirs[i]);

        r = mkdir_p(d, 0700, err);
        if (r < 0)
            return r;
    }
    if (access(settings, F_OK) == 0 && access(tenant_path, F_OK) == 0)
        return 0;

    /* First start: an admin tenant holding slice 0 of the id range, and its token. */
    r = random_hex(token, 32, err);
    if (r < 0)
        return r;
    sha256_hex(token, strlen(token), hash);
    {
        _cleanup_free_ char *created = now_iso8601();
        _cleanup_json_ json_t *tenant = json_pack("{s:s, s:i, s:[s], s:s}", "name", MODEL_ADMIN_TENANT,
                                                  "slice", 0, "token_sha256", hash, "created_at", created);
        _cleanup_json_ json_t *cfg = json_pack("{s:i, s:s}", "version", 1, "created_at", created);
        _cleanup_strbuf_ struct strbuf line = STRBUF_INIT;

        r = json_store_save(tenant_path, tenant, 0600, err);
        if (r < 0)
            return r;
        strbuf_addf(&line, "%s\n", token);
        r = write_file_atomic(token_path, line.buf, line.len, 0600, err);
        if (r < 0)
            return r;
        r = json_store_save(settings, cfg, 0600, err);
        if (r < 0)
            return r;
    }
    if (ret_created_token)
        *ret_created_token = xstrdup(token);
    return 0;
}

static int load_tenant(const struct model *m, const char *name, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *p = model_path(m, "tenants/%s.json", name);

    return json_store_load(p, ret, err);
}

int model_tenant_slice(const struct model *m, const char *tenant, unsigned long *ret_slice,
                       struct berth_error **err)
{
    _cleanup_json_ json_t *t = NULL;
    int r = load_tenant(m, tenant, &t, err);
    json_t *s;

    if (r < 0)
        return r;
    s = json_object_get(t, "slice");
    if (!json_is_integer(s) || json_integer_value(s) < 0)
        return berth_error_plain(err, EINVAL, "tenant '%s' has no id slice", tenant);
    *ret_slice = (unsigned long)json_integer_value(s);
    return 0;
}

bool model_app_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;

    if (len == 0 || len > APP_NAME_MAX || name[0] < 'a' || name[0] > 'z' || name[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

int model_app_create(const struct model *m, const char *name, const char *tenant, struct berth_error **err)
{
    static const char *const subdirs[] = { "releases", "cache", "logs" };
    _cleanup_free_ char *dir = model_path(m, "apps/%s", name);
    _cleanup_free_ char *app_path = model_path(m, "apps/%s/app.json", name);
    _cleanup_free_ char *config_path = model_path(m, "apps/%s/config.json", name);
    _cleanup_free_ char *created = now_iso8601();
    _cleanup_json_ json_t *app = NULL;
    _cleanup_json_ json_t *config = json_object();
    int r;

    if (!model_app_name_valid(name))
        return berth_error_plain(err, EINVAL,
                                 "invalid app name '%s': use 1-%d lowercase letters, digits and dashes, "
                                 "starting with a letter", name, APP_NAME_MAX);
    /* mkdir of the app directory is the create-once lock: two creates race on it. */
    if (mkdir(dir, 0700) < 0) {
        if (errno == EEXIST)
            return berth_error_plain(err, EEXIST, "app '%s' already exists", name);
        return berth_error_make(err, errno, "mkdir '%s'", dir);
    }
    for (size_t i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        _cleanup_free_ char *d = model_path(m, "apps/%s/%s", name, subdirs[i]);

        if (mkdir(d, 0700) < 0 && errno != EEXIST)
            return berth_error_make(err, errno, "mkdir '%s'", d);
    }
    app = json_pack("{s:s, s:s, s:s}", "name", name, "tenant", tenant, "created_at", created);
    r = json_store_save(config_path, config, 0600, err);
    if (r < 0)
        return r;
    /* app.json last: an app without it is an interrupted create, not an app. */
    return json_store_save(app_path, app, 0600, err);
}

int model_app_create_random(const struct model *m, const char *tenant, char **ret_name, struct berth_error **err)
{
    static const char *const adjectives[] = {
        "ancient", "autumn", "billowing", "bold", "brave", "calm", "crimson", "damp", "dawn", "desert",
        "divine", "dry", "falling", "floral", "fragrant", "frosty", "gentle", "golden", "hidden", "icy",
        "lively", "misty", "morning", "nameless", "patient", "polished", "proud", "quiet", "rapid", "shy",
        "silent", "sleepy", "snowy", "solitary", "sparkling", "still", "sunny", "swift", "twilight", "young",
    };
    static const char *const nouns[] = {
        "bird", "brook", "bush", "cloud", "dawn", "dew", "dream", "dust", "field", "fire",
        "flower", "fog", "forest", "frost", "glade", "grass", "harbor", "haze", "hill", "lake",
        "leaf", "meadow", "moon", "mountain", "night", "ocean", "pine", "river", "sea", "shadow",
        "sky", "smoke", "snow", "sound", "star", "sun", "thunder", "tree", "water", "wave",
    };
    char hex[9];
    int r;

    for (int attempt = 0; attempt < 32; attempt++) {
        _cleanup_free_ char *name = NULL, *dir = NULL;
        unsigned long rnd;

        if ((r = random_hex(hex, 4, err)) < 0)
            return r;
        rnd = strtoul(hex, NULL, 16);
        name = xasprintf("%s-%s-%04lu", adjectives[(rnd >> 24) % (sizeof(adjectives) / sizeof(*adjectives))],
                         nouns[((rnd >> 16) & 0xff) % (sizeof(nouns) / sizeof(*nouns))], (rnd & 0xffff) % 10000);
        dir = model_path(m, "apps/%s", name);
        if (access(dir, F_OK) == 0)
            continue;
        /* A create of the same name in between fails this one with EEXIST: rare enough to say so. */
        if ((r = model_app_create(m, name, tenant, err)) < 0)
            return r;
        *ret_name = TAKE_PTR(name);
        return 0;
    }
    return berth_error_plain(err, EEXIST, "no free random app name after 32 tries: give the app a name");
}

/* The app.json of an existing app (malloc'ed), or -ENOENT with "app 'x' does not exist". */
static int app_record_path(const struct model *m, const char *name, char **ret, struct berth_error **err)
{
    char *p;

    if (!model_app_name_valid(name))
        return berth_error_plain(err, ENOENT, "app '%s' does not exist", name);
    p = model_path(m, "apps/%s/app.json", name);
    if (access(p, F_OK) < 0) {
        free(p);
        return berth_error_plain(err, ENOENT, "app '%s' does not exist", name);
    }
    *ret = p;
    return 0;
}

int model_app_load(const struct model *m, const char *name, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *p = NULL;
    int r = app_record_path(m, name, &p, err);

    return r < 0 ? r : json_store_load(p, ret, err);
}

char *model_tenant_cgroup(const struct model *m, const char *tenant)
{
    return xasprintf("%s@%s", tenant, m->home_key);
}

char *model_app_cgroup_of(const struct model *m, const char *tenant, const char *app)
{
    return xasprintf("%s@%s/%s", tenant, m->home_key, app);
}

char *model_app_cgroup(const struct model *m, const char *name)
{
    _cleanup_json_ json_t *record = NULL;
    const char *tenant;

    if (model_app_load(m, name, &record, NULL) < 0 || !(tenant = json_get_str(record, "tenant")))
        return NULL;
    return model_app_cgroup_of(m, tenant, name);
}

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

int model_app_list(const struct model *m, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(m, "apps");
    _cleanup_closedir_ DIR *d = opendir(dir);
    _cleanup_json_ json_t *names = json_array();
    _cleanup_free_ json_t **v = NULL;
    json_t *out;
    struct dirent *de;
    size_t n, i;

    if (!d)
        return berth_error_make(err, errno, "open '%s'", dir);
    while ((de = readdir(d))) {
        _cleanup_free_ char *p = NULL;

        if (!model_app_name_valid(de->d_name))
            continue;
        p = model_path(m, "apps/%s/app.json", de->d_name);
        if (access(p, F_OK) == 0)
            json_array_append_new(names, json_string(de->d_name));
    }
    n = json_array_size(names);
    v = xcalloc(n, sizeof(*v));
    for (i = 0; i < n; i++)
        v[i] = json_array_get(names, i);
    qsort(v, n, sizeof(*v), cmp_json_str);
    out = json_array();
    for (i = 0; i < n; i++)
        json_array_append(out, v[i]);
    *ret = out;
    return 0;
}

int model_app_list_of(const struct model *m, const char *tenant, json_t **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *all = NULL;
    json_t *name, *mine;
    size_t i;
    int r;

    if ((r = model_app_list(m, &all, err)) < 0)
        return r;
    mine = json_array();
    json_array_foreach(all, i, name) {
        _cleanup_json_ json_t *record = NULL;
        const char *owner;

        if (model_app_load(m, json_string_value(name), &record, NULL) == 0 &&
            (owner = json_get_str(record, "tenant")) && strcmp(owner, tenant) == 0)
            json_array_append(mine, name);
    }
    *ret = mine;
    return 0;
}

int model_app_save(const struct model *m, const char *name, const json_t *app, struct berth_error **err)
{
    _cleanup_free_ char *p = NULL;
    int r = app_record_path(m, name, &p, err);

    return r < 0 ? r : json_store_save(p, app, 0600, err);
}

int model_app_config(const struct model *m, const char *name, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *p = model_path(m, "apps/%s/config.json", name);

    return json_store_load(p, ret, err);
}

int model_app_config_save(const struct model *m, const char *name, const json_t *config,
                          struct berth_error **err)
{
    _cleanup_free_ char *p = model_path(m, "apps/%s/config.json", name);

    return json_store_save(p, config, 0600, err);
}

int model_settings_load(const struct model *m, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *p = model_path(m, "berth.json");

    return json_store_load(p, ret, err);
}

int model_release_current(const struct model *m, const char *app, unsigned *ret_version, json_t **ret,
                          struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(m, "apps/%s/releases", app);
    _cleanup_closedir_ DIR *d = opendir(dir);
    unsigned best = 0;
    struct dirent *de;

    if (!d)
        return berth_error_make(err, errno, "open '%s'", dir);
    while ((de = readdir(d))) {
        char *end;
        unsigned long v = strtoul(de->d_name, &end, 10);

        if (end != de->d_name && strcmp(end, ".json") == 0 && v > best && v < 1000000000UL)
            best = (unsigned)v;
    }
    *ret_version = best;
    if (ret) {
        _cleanup_free_ char *p = NULL;

        *ret = NULL;
        if (best == 0)
            return 0;
        p = model_path(m, "apps/%s/releases/%u.json", app, best);
        return json_store_load(p, ret, err);
    }
    return 0;
}

int model_release_load(const struct model *m, const char *app, unsigned version, json_t **ret,
                       struct berth_error **err)
{
    _cleanup_free_ char *p = model_path(m, "apps/%s/releases/%u.json", app, version);

    if (access(p, F_OK) < 0)
        return berth_error_plain(err, ENOENT, "release v%u of '%s' does not exist", version, app);
    return json_store_load(p, ret, err);
}

int model_release_save(const struct model *m, const char *app, unsigned version, const json_t *release,
                       struct berth_error **err)
{
    _cleanup_free_ char *p = model_path(m, "apps/%s/releases/%u.json", app, version);

    if (access(p, F_OK) == 0)
        return berth_error_plain(err, EEXIST, "release v%u of '%s' already exists", version, app);
    return json_store_save(p, release, 0600, err);
}
