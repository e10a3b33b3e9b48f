/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/tenants: tenant records, tokens and authentication (see
 * tenants.h). A token is looked up by hashing it and comparing, in constant
 * time, with every hash of every record: there are few tenants, and a
 * request's cost is one small file read per tenant.
 */
#include "control/tenants.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/xalloc.h"

/* 32 random bytes as hex: the format of every berth token. */
#define TOKEN_BYTES 32
#define TOKEN_ID_BYTES 6
/* A tenant's scoped tokens: a cap on what one record holds. */
#define TOKENS_MAX 100

void tenants_principal_release(struct tenants_principal *p)
{
    free(p->tenant);
    free(p->app);
    free(p->token_id);
    memset(p, 0, sizeof(*p));
}

const char *tenants_role_name(enum tenants_role role)
{
    switch (role) {
    case TENANTS_ROLE_OWNER: return "owner";
    case TENANTS_ROLE_DEPLOY: return "deploy";
    case TENANTS_ROLE_READ: return "read";
    default: return "?";
    }
}

bool tenants_role_parse(const char *name, enum tenants_role *ret)
{
    if (name && strcmp(name, "deploy") == 0)
        *ret = TENANTS_ROLE_DEPLOY;
    else if (name && strcmp(name, "read") == 0)
        *ret = TENANTS_ROLE_READ;
    else
        return false;
    return true;
}

bool tenants_name_valid(const char *name)
{
    return model_app_name_valid(name) && strcmp(name, MODEL_ADMIN_TENANT) != 0 &&
           strcmp(name, MODEL_RESERVED_TENANT) != 0;
}

static char *record_path(const struct model *m, const char *name)
{
    return model_path(m, "tenants/%s.json", name);
}

int tenants_load(const struct model *m, const char *name, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *p = NULL;

    /* The admin's name is no valid new tenant's, but its record is loaded like any. */
    if (!model_app_name_valid(name))
        return berth_error_plain(err, ENOENT, "tenant '%s' does not exist", name);
    p = record_path(m, name);
    if (access(p, F_OK) < 0)
        return berth_error_plain(err, ENOENT, "tenant '%s' does not exist", name);
    return json_store_load(p, ret, err);
}

static int save(const struct model *m, const char *name, const json_t *record, struct berth_error **err)
{
    _cleanup_free_ char *p = record_path(m, name);

    return json_store_save(p, record, 0600, err);
}

static int cmp_json_str(const void *a, const void *b)
{
    return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

int tenants_list(const struct model *m, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(m, "tenants");
    _cleanup_closedir_ DIR *d = opendir(dir);
    _cleanup_free_ json_t **v = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    json_t *out;

    if (!d)
        return berth_error_make(err, errno, "open '%s'", dir);
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        _cleanup_free_ char *name = NULL;

        if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        name = xstrndup(de->d_name, len - 5);
        if (!model_app_name_valid(name))
            continue;
        if (n == cap)
            v = xrealloc(v, (cap = cap ? 2 * cap : 16) * sizeof(*v));
        v[n++] = json_string(name);
    }
    qsort(v, n, sizeof(*v), cmp_json_str);
    out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, v[i]);
    *ret = out;
    return 0;
}

/* ---------------------------------------------------------------- authentication */

/* The principal of `t` if one of its tokens hashes to `hash`. */
static bool match_record(const json_t *t, const char *name, const char *hash, struct tenants_principal *ret)
{
    json_t *h, *tok;
    size_t i;

    json_array_foreach(json_object_get(t, "token_sha256"), i, h) {
        if (json_is_string(h) && secure_streq(json_string_value(h), hash)) {
            *ret = (struct tenants_principal){ .tenant = xstrdup(name), .role = TENANTS_ROLE_OWNER };
            return true;
        }
    }
    json_array_foreach(json_object_get(t, "tokens"), i, tok) {
        const char *th = json_get_str(tok, "sha256"), *app = json_get_str(tok, "app");
        enum tenants_role role;

        if (!th || !secure_streq(th, hash) || !tenants_role_parse(json_get_str(tok, "role"), &role))
            continue;
        *ret = (struct tenants_principal){
            .tenant = xstrdup(name), .role = role, .app = app ? xstrdup(app) : NULL,
            .token_id = xstrdup(json_get_str(tok, "id") ? json_get_str(tok, "id") : ""),
        };
        return true;
    }
    return false;
}

int tenants_authenticate(const struct model *m, const char *token, struct tenants_principal *ret,
                         struct berth_error **err)
{
    _cleanup_json_ json_t *names = NULL;
    char hash[SHA256_HEX_LEN + 1];
    json_t *name;
    size_t i;
    int r;

    memset(ret, 0, sizeof(*ret));
    if (!token || !*token || strlen(token) > 256)
        return berth_error_plain(err, EACCES, "invalid credentials");
    if ((r = tenants_list(m, &names, err)) < 0)
        return r;
    sha256_hex(token, strlen(token), hash);
    json_array_foreach(names, i, name) {
        _cleanup_json_ json_t *t = NULL;

        if (tenants_load(m, json_string_value(name), &t, NULL) == 0 &&
            match_record(t, json_string_value(name), hash, ret))
            return 0;
    }
    return berth_error_plain(err, EACCES, "invalid credentials");
}

/* ---------------------------------------------------------------- slices */

static int record_slice(const json_t *t, unsigned long *ret)
{
    const json_t *s = json_object_get(t, "slice");

    if (!json_is_integer(s) || json_integer_value(s) < 0)
        return -EINVAL;
    *ret = (unsigned long)json_integer_value(s);
    return 0;
}

/* Which tenant holds each slice: {"<slice>": "<tenant>"}; -EINVAL naming both tenants of a shared slice. */
static int slice_owners(const struct model *m, json_t **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *names = NULL, *owners = json_object();
    json_t *name;
    size_t i;
    int r;

    if ((r = tenants_list(m, &names, err)) < 0)
        return r;
    json_array_foreach(names, i, name) {
        const char *tenant = json_string_value(name);
        _cleanup_json_ json_t *t = NULL;
        unsigned long slice;
        char key[24];
        const char *other;

        if ((r = tenants_load(m, tenant, &t, err)) < 0)
            return r;
        if (record_slice(t, &slice) < 0)
            return berth_error_plain(err, EINVAL, "tenant '%s' has no id slice (tenants/%s.json)", tenant, tenant);
        snprintf(key, sizeof(key), "%lu", slice);
        if ((other = json_string_value(json_object_get(owners, key))))
            return berth_error_plain(err, EINVAL, "tenants '%s' and '%s' both hold id slice %lu: two tenants "
                                     "would share host uids (fix tenants/%s.json or tenants/%s.json)",
                                     other, tenant, slice, other, tenant);
        json_object_set_new(owners, key, json_string(tenant));
    }
    *ret = TAKE_PTR(owners);
    return 0;
}

int tenants_check_slices(const struct model *m, struct berth_error **err)
{
    _cleanup_json_ json_t *owners = NULL;

    return slice_owners(m, &owners, err);
}

/* ---------------------------------------------------------------- creating and removing */

static char *now_iso8601(void)
{
    char buf[MODEL_TIME_LEN + 1];

    model_time_format(time(NULL), buf);
    return xstrdup(buf);
}

/* A new token and its hash. */
static int new_token(char **ret_token, char hash[SHA256_HEX_LEN + 1], struct berth_error **err)
{
    char token[2 * TOKEN_BYTES + 1];
    int r = random_hex(token, TOKEN_BYTES, err);

    if (r < 0)
        return r;
    sha256_hex(token, strlen(token), hash);
    *ret_token = xstrdup(token);
    return 0;
}

int tenants_create(const struct model *m, const char *name, unsigned long slices, char **ret_token,
                   unsigned long *ret_slice, struct berth_error **err)
{
    _cleanup_json_ json_t *owners = NULL, *record = NULL;
    _cleanup_free_ char *path = NULL, *token = NULL, *created = NULL;
    char hash[SHA256_HEX_LEN + 1];
    unsigned long slice;
    int r;

    if (!tenants_name_valid(name))
        return berth_error_plain(err, EINVAL, "invalid tenant name '%s': use 1-%d lowercase letters, digits and "
                                 "dashes, starting with a letter (not 'admin' or 'stacks')", name, APP_NAME_MAX);
    path = record_path(m, name);
    if (access(path, F_OK) == 0)
        return berth_error_plain(err, EEXIST, "tenant '%s' already exists", name);
    if ((r = slice_owners(m, &owners, err)) < 0)
        return r;
    for (slice = 0; slice < slices; slice++) {
        char key[24];

        snprintf(key, sizeof(key), "%lu", slice);
        if (!json_object_get(owners, key))
            break;
    }
    if (slice >= slices)
        return berth_error_plain(err, ENOSPC, "no free subordinate id slice for tenant '%s': berth's /etc/subuid "
                                 "and /etc/subgid ranges hold %lu slices of %lu ids, all taken (widen them, "
                                 "e.g. 'berth setup --user <user>' after raising the range, or destroy a tenant)",
                                 name, slices, TENANT_ID_SLICE);
    if ((r = new_token(&token, hash, err)) < 0)
        return r;
    created = now_iso8601();
    record = json_pack("{s:s, s:I, s:[s], s:[], s:s}", "name", name, "slice", (json_int_t)slice,
                       "token_sha256", hash, "tokens", "created_at", created);
    if ((r = save(m, name, record, err)) < 0)
        return r;
    *ret_token = TAKE_PTR(token);
    *ret_slice = slice;
    return 0;
}

int tenants_remove(const struct model *m, const char *name, struct berth_error **err)
{
    _cleanup_free_ char *p = record_path(m, name);

    if (unlink(p) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "unlink '%s'", p);
    return fsync_parent_dir(p, err);
}

/* ---------------------------------------------------------------- tokens */

int tenants_token_rotate(const struct model *m, const char *tenant, char **ret_token, struct berth_error **err)
{
    _cleanup_json_ json_t *t = NULL;
    _cleanup_free_ char *token = NULL;
    char hash[SHA256_HEX_LEN + 1];
    int r;

    if ((r = tenants_load(m, tenant, &t, err)) < 0 || (r = new_token(&token, hash, err)) < 0)
        return r;
    json_object_set_new(t, "token_sha256", json_pack("[s]", hash));
    if ((r = save(m, tenant, t, err)) < 0)
        return r;
    *ret_token = TAKE_PTR(token);
    return 0;
}

int tenants_token_create(const struct model *m, const char *tenant, enum tenants_role role, const char *app,
                         char **ret_id, char **ret_token, struct berth_error **err)
{
    _cleanup_json_ json_t *t = NULL;
    _cleanup_free_ char *token = NULL, *created = NULL;
    char hash[SHA256_HEX_LEN + 1], id[2 * TOKEN_ID_BYTES + 1];
    json_t *tokens, *entry;
    int r;

    if (role == TENANTS_ROLE_OWNER)
        return berth_error_plain(err, EINVAL, "a scoped token's role is deploy or read");
    if ((r = tenants_load(m, tenant, &t, err)) < 0)
        return r;
    tokens = json_object_get(t, "tokens");
    if (!json_is_array(tokens)) {
        tokens = json_array();
        json_object_set_new(t, "tokens", tokens);
    }
    if (json_array_size(tokens) >= TOKENS_MAX)
        return berth_error_plain(err, E2BIG, "tenant '%s' has %d tokens already: revoke some first", tenant,
                                 TOKENS_MAX);
    if ((r = new_token(&token, hash, err)) < 0 || (r = random_hex(id, TOKEN_ID_BYTES, err)) < 0)
        return r;
    created = now_iso8601();
    entry = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "sha256", hash, "role", tenants_role_name(role),
                      "created_at", created);
    if (app)
        json_object_set_new(entry, "app", json_string(app));
    json_array_append_new(tokens, entry);
    if ((r = save(m, tenant, t, err)) < 0)
        return r;
    *ret_id = xstrdup(id);
    *ret_token = TAKE_PTR(token);
    return 0;
}

int tenants_token_list(const struct model *m, const char *tenant, json_t **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *t = NULL;
    json_t *out, *tok;
    size_t i;
    int r;

    if ((r = tenants_load(m, tenant, &t, err)) < 0)
        return r;
    out = json_array();
    json_array_foreach(json_object_get(t, "tokens"), i, tok) {
        json_t *entry = json_pack("{s:s?, s:s?, s:s?}", "id", json_get_str(tok, "id"), "role",
                                  json_get_str(tok, "role"), "created_at", json_get_str(tok, "created_at"));

        json_object_set_new(entry, "app", json_get_str(tok, "app") ? json_string(json_get_str(tok, "app"))
                                                                   : json_null());
        json_array_append_new(out, entry);
    }
    *ret = out;
    return 0;
}

/* Removes the tenant's scoped tokens `drop` picks; *ret_removed (may be NULL) counts them. */
static int drop_tokens(const struct model *m, const char *tenant, bool (*drop)(const json_t *tok, const char *arg),
                       const char *arg, size_t *ret_removed, struct berth_error **err)
{
    _cleanup_json_ json_t *t = NULL;
    json_t *tokens, *kept;
    size_t i, removed = 0;
    json_t *tok;
    int r;

    if ((r = tenants_load(m, tenant, &t, err)) < 0)
        return r;
    tokens = json_object_get(t, "tokens");
    kept = json_array();
    json_array_foreach(tokens, i, tok) {
        if (drop(tok, arg))
            removed++;
        else
            json_array_append(kept, tok);
    }
    json_object_set_new(t, "tokens", kept);
    if (ret_removed)
        *ret_removed = removed;
    return removed ? save(m, tenant, t, err) : 0;
}

static bool token_has_id(const json_t *tok, const char *id)
{
    const char *v = json_get_str(tok, "id");

    return v && strcmp(v, id) == 0;
}

static bool token_has_app(const json_t *tok, const char *app)
{
    const char *v = json_get_str(tok, "app");

    return v && strcmp(v, app) == 0;
}

static bool token_any(const json_t *tok, const char *arg)
{
    (void)tok;
    (void)arg;
    return true;
}

int tenants_token_revoke(const struct model *m, const char *tenant, const char *id, struct berth_error **err)
{
    size_t removed = 0;
    int r = drop_tokens(m, tenant, token_has_id, id, &removed, err);

    if (r < 0)
        return r;
    if (!removed)
        return berth_error_plain(err, ENOENT, "no token '%.40s'", id);
    return 0;
}

int tenants_token_drop_app(const struct model *m, const char *tenant, const char *app, struct berth_error **err)
{
    return drop_tokens(m, tenant, token_has_app, app, NULL, err);
}

int tenants_token_drop_all(const struct model *m, const char *tenant, struct berth_error **err)
{
    _cleanup_json_ json_t *t = NULL;
    int r;

    if ((r = drop_tokens(m, tenant, token_any, NULL, NULL, err)) < 0 || (r = tenants_load(m, tenant, &t, err)) < 0)
        return r;
    json_object_set_new(t, "token_sha256", json_array());
    return save(m, tenant, t, err);
}
