/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for control's records (model.c) and the subordinate id
 * slicing (subid.c), on a temporary home.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/crypto.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "control/model.h"
#include "control/subid.h"
#include "control/tenants.h"
#include "control/units.h"

static void test_names(void)
{
    ok(model_app_name_valid("hello"), "plain name");
    ok(model_app_name_valid("a1-b2"), "digits and dashes");
    ok(!model_app_name_valid(""), "empty is invalid");
    ok(!model_app_name_valid("Hello"), "uppercase is invalid");
    ok(!model_app_name_valid("1abc"), "leading digit is invalid");
    ok(!model_app_name_valid("abc-"), "trailing dash is invalid");
    ok(!model_app_name_valid("a.b"), "dots are invalid (they would split the Host)");
    ok(!model_app_name_valid("../etc"), "path characters are invalid");
    ok(!model_app_name_valid("abcdefghijabcdefghijabcdefghija"), "31 characters is too long");
}

static void test_units(void)
{
    uint64_t b = 0;
    unsigned secs = 0;

    ok(units_parse_size("512M", &b) && b == 512ULL << 20, "512M");
    ok(units_parse_size("2G", &b) && b == 2ULL << 30 && units_parse_size("2gib", &b) && b == 2ULL << 30,
       "2G, 2gib");
    ok(units_parse_size("4096", &b) && b == 4096 && units_parse_size("1k", &b) && b == 1024, "bytes, 1k");
    ok(!units_parse_size("1.5G", &b) && !units_parse_size("0", &b) && !units_parse_size("-1M", &b) &&
       !units_parse_size("M", &b) && !units_parse_size("12Q", &b) && !units_parse_size("", &b) &&
       !units_parse_size(NULL, &b), "fractions, zero, negatives, bare or unknown units are refused");
    ok(!units_parse_size("99999999999999999999", &b) && !units_parse_size("17179869184G", &b),
       "overflow is refused");
    ok(units_parse_duration("15m", &secs) && secs == 900 && units_parse_duration("90", &secs) &&
       secs == 90 && units_parse_duration("2h", &secs) && secs == 7200 &&
       units_parse_duration("30s", &secs) && secs == 30, "15m, 90, 2h, 30s");
    ok(!units_parse_duration("0", &secs) && !units_parse_duration("1d", &secs) &&
       !units_parse_duration("99999999999h", &secs), "zero, unknown units and overflow are refused");
}

/* The principal a token authenticates as, or NULL tenant; the caller releases it. */
static struct tenants_principal who_is(const struct model *m, const char *token)
{
    struct tenants_principal who;

    (void)tenants_authenticate(m, token, &who, NULL);
    return who;
}

static void test_tenants(void)
{
    char dir[] = "/tmp/berth-test-tenants-XXXXXX";
    struct berth_error *err = NULL;
    struct model m;
    _cleanup_free_ char *admin = NULL, *acme = NULL, *beta = NULL, *rotated = NULL, *id = NULL, *scoped = NULL;
    _cleanup_json_ json_t *list = NULL, *tokens = NULL;
    unsigned long slice = 99;
    struct tenants_principal who;

    ok(mkdtemp(dir) != NULL && model_open(&m, dir, &err) == 0 && model_init_home(&m, &admin, &err) == 0,
       "tenants: temp home");
    ok(!tenants_name_valid("admin") && !tenants_name_valid("stacks") && !tenants_name_valid("Acme") &&
       !tenants_name_valid("") && !tenants_name_valid("a/b") && tenants_name_valid("acme-2"),
       "tenant names: app rules, not admin or stacks");
    ok(tenants_create(&m, "acme", 3, &acme, &slice, &err) == 0 && slice == 1 && strlen(acme) == 64,
       "acme gets slice 1 (admin holds 0) and a 64-hex token");
    ok(tenants_create(&m, "acme", 3, &beta, &slice, &err) == -EEXIST && !beta, "a second acme is refused");
    berth_error_release(&err);
    ok(tenants_create(&m, "admin", 3, &beta, &slice, &err) == -EINVAL, "'admin' is refused");
    berth_error_release(&err);
    ok(tenants_create(&m, "beta", 3, &beta, &slice, &err) == 0 && slice == 2, "beta gets slice 2");
    {
        char *none = NULL;

        ok(tenants_create(&m, "gamma", 3, &none, &slice, &err) == -ENOSPC &&
           strstr(berth_error_msg(&err), "no free subordinate id slice") && !none, "no slice left: ENOSPC");
        berth_error_release(&err);
    }
    ok(tenants_list(&m, &list, &err) == 0 && json_array_size(list) == 3 &&
       strcmp(json_string_value(json_array_get(list, 0)), "acme") == 0, "three tenants, sorted");
    who = who_is(&m, acme);
    ok(who.tenant && strcmp(who.tenant, "acme") == 0 && who.role == TENANTS_ROLE_OWNER, "acme's token is acme's");
    tenants_principal_release(&who);
    ok(tenants_check_slices(&m, &err) == 0, "slices are unique");

    ok(tenants_token_create(&m, "acme", TENANTS_ROLE_DEPLOY, "web", &id, &scoped, &err) == 0 && strlen(id) == 12,
       "a deploy token for app web");
    who = who_is(&m, scoped);
    ok(who.tenant && strcmp(who.tenant, "acme") == 0 && who.role == TENANTS_ROLE_DEPLOY && who.app &&
       strcmp(who.app, "web") == 0 && strcmp(who.token_id, id) == 0, "it authenticates with its role and app");
    tenants_principal_release(&who);
    ok(tenants_token_list(&m, "acme", &tokens, &err) == 0 && json_array_size(tokens) == 1 &&
       !json_object_get(json_array_get(tokens, 0), "sha256") &&
       strcmp(json_get_str(json_array_get(tokens, 0), "role"), "deploy") == 0, "listed, without its hash");
    ok(tenants_token_revoke(&m, "acme", "000000000000", &err) == -ENOENT, "revoking an unknown id: ENOENT");
    berth_error_release(&err);
    ok(tenants_token_revoke(&m, "acme", id, &err) == 0, "revoke it");
    who = who_is(&m, scoped);
    ok(!who.tenant, "a revoked token authenticates no more");
    ok(tenants_token_rotate(&m, "acme", &rotated, &err) == 0 && strcmp(rotated, acme) != 0, "rotate acme's token");
    who = who_is(&m, acme);
    ok(!who.tenant, "the rotated-away token authenticates no more");
    who = who_is(&m, rotated);
    ok(who.tenant && strcmp(who.tenant, "acme") == 0, "the new one does");
    tenants_principal_release(&who);
    {
        _cleanup_free_ char *p = model_path(&m, "tenants/acme.json");
        _cleanup_json_ json_t *t = NULL;

        /* Another module's key (quotas' "limits") survives every rewrite. */
        ok(json_store_load(p, &t, &err) == 0 && json_object_set_new(t, "limits", json_pack("{s:i}", "apps", 3)) == 0 &&
           json_store_save(p, t, 0600, &err) == 0, "add a key tenants.c does not know");
        free(TAKE_PTR(beta));
        ok(tenants_token_rotate(&m, "acme", &beta, &err) == 0, "rotate again");
        json_decref(t);
        t = NULL;
        ok(json_store_load(p, &t, &err) == 0 &&
           json_integer_value(json_object_get(json_object_get(t, "limits"), "apps")) == 3, "the unknown key is kept");
    }
    free(TAKE_PTR(scoped));
    ok(tenants_token_drop_all(&m, "beta", &err) == 0 && tenants_remove(&m, "beta", &err) == 0 &&
       tenants_create(&m, "gamma", 3, &scoped, &slice, &err) == 0 && slice == 2,
       "beta's slice is free again once it is removed");
    {
        _cleanup_free_ char *p = model_path(&m, "tenants/gamma.json");
        _cleanup_json_ json_t *t = NULL;

        ok(json_store_load(p, &t, &err) == 0 && json_object_set_new(t, "slice", json_integer(1)) == 0 &&
           json_store_save(p, t, 0600, &err) == 0, "make gamma share acme's slice");
        ok(tenants_check_slices(&m, &err) == -EINVAL && strstr(berth_error_msg(&err), "'acme' and 'gamma'"),
           "a shared slice is an error naming both tenants");
        berth_error_release(&err);
    }
    {
        _cleanup_free_ char *name = NULL;

        ok(model_app_create_random(&m, "acme", &name, &err) == 0 && model_app_name_valid(name) &&
           strchr(name, '-') && strlen(name) >= 10, "a random app name is a valid DNS label");
    }
    {
        _cleanup_free_ char *cmd = xasprintf("rm -rf '%s'", dir);

        ok(system(cmd) == 0, "tenants: clean up");
    }
    model_close(&m);
}

/* The cgroup names carry the home's key: one tenant name in two homes, two cgroups. */
static void test_cgroup_names(const struct model *m, const char *dir)
{
    _cleanup_free_ char *mine = model_tenant_cgroup(m, "admin"), *app = model_app_cgroup(m, "hello");
    _cleanup_free_ char *slashed = xasprintf("%s/", dir), *dotted = xasprintf("%s/.", dir);
    _cleanup_free_ char *other_dir = xasprintf("%s/other", dir), *want_app = NULL;
    _cleanup_free_ char *same_cg = NULL, *same2_cg = NULL, *other_cg = NULL;
    char hex[SHA256_HEX_LEN + 1];
    struct model same, same2, other;

    ok(model_open(&same, slashed, NULL) == 0 && model_open(&same2, dotted, NULL) == 0, "the home opened as %s and %s",
       slashed, dotted);
    same_cg = model_tenant_cgroup(&same, "admin");
    same2_cg = model_tenant_cgroup(&same2, "admin");

    sha256_hex(dir, strlen(dir), hex);
    ok(strncmp(mine, "admin@", 6) == 0 && strlen(mine) == 6 + MODEL_HOME_KEY_LEN &&
       strncmp(mine + 6, hex, MODEL_HOME_KEY_LEN) == 0, "a tenant's cgroup is admin@ and the home's key (%s)", mine);
    want_app = xasprintf("%s/hello", mine);
    ok(app && strcmp(app, want_app) == 0, "an app's cgroup is below its tenant's (%s)", app ? app : "NULL");
    ok(strcmp(same_cg, mine) == 0 && strcmp(same2_cg, mine) == 0,
       "the same home named with a trailing slash or /. has the same key");
    ok(mkdir(other_dir, 0700) == 0 && model_open(&other, other_dir, NULL) == 0, "a second home");
    other_cg = model_tenant_cgroup(&other, "admin");
    ok(strcmp(other_cg, mine) != 0 && strncmp(other_cg, "admin@", 6) == 0,
       "the same tenant in another home has another cgroup (%s)", other_cg);
    model_close(&same);
    model_close(&same2);
    model_close(&other);
}

static void test_model(void)
{
    char dir[] = "/tmp/berth-test-model-XXXXXX";
    struct berth_error *err = NULL;
    struct model m;
    _cleanup_free_ char *token = NULL, *token2 = NULL;
    _cleanup_json_ json_t *list = NULL, *app = NULL, *rel = NULL;
    unsigned version = 99;
    unsigned long slice = 7;

    ok(mkdtemp(dir) != NULL, "temp home");
    ok(model_open(&m, dir, &err) == 0, "open");
    ok(model_init_home(&m, &token, &err) == 0 && token && strlen(token) == 64, "first start makes a token");
    ok(model_init_home(&m, &token2, &err) == 0 && token2 == NULL, "second start keeps it");
    {
        _cleanup_free_ char *p = model_path(&m, "admin.token");
        struct stat st;

        ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600, "admin.token is mode 0600");
    }
    {
        struct tenants_principal who;

        ok(tenants_authenticate(&m, token, &who, &err) == 0 && strcmp(who.tenant, "admin") == 0 &&
           who.role == TENANTS_ROLE_OWNER && !who.app, "token authenticates as the admin's owner");
        tenants_principal_release(&who);
        ok(tenants_authenticate(&m, "wrong", &who, &err) == -EACCES && !who.tenant, "a wrong token does not");
        berth_error_release(&err);
        ok(tenants_authenticate(&m, "", &who, &err) == -EACCES, "an empty token does not");
        berth_error_release(&err);
    }
    ok(model_tenant_slice(&m, "admin", &slice, &err) == 0 && slice == 0, "admin holds slice 0");
    ok(model_app_create(&m, "hello", "admin", &err) == 0, "create app");
    ok(model_app_create(&m, "hello", "admin", &err) == -EEXIST && strstr(berth_error_msg(&err), "already exists"),
       "creating it twice is a clear error");
    berth_error_release(&err);
    ok(model_app_create(&m, "Bad Name", "admin", &err) == -EINVAL, "invalid name rejected");
    berth_error_release(&err);
    ok(model_app_create(&m, "another", "admin", &err) == 0, "create a second app");
    ok(model_app_list(&m, &list, &err) == 0 && json_array_size(list) == 2 &&
       strcmp(json_string_value(json_array_get(list, 0)), "another") == 0, "list is sorted");
    ok(model_app_load(&m, "hello", &app, &err) == 0 && strcmp(json_get_str(app, "tenant"), "admin") == 0,
       "load records the tenant");
    {
        json_t *none = NULL;

        ok(model_app_load(&m, "missing", &none, &err) == -ENOENT &&
           strcmp(berth_error_msg(&err), "app 'missing' does not exist") == 0, "missing app message");
        berth_error_release(&err);
    }
    ok(model_release_current(&m, "hello", &version, &rel, &err) == 0 && version == 0 && !rel, "no release yet");
    {
        _cleanup_json_ json_t *r1 = json_pack("{s:i, s:s}", "version", 1, "slug", "abc");

        ok(model_release_save(&m, "hello", 1, r1, &err) == 0, "save v1");
        ok(model_release_save(&m, "hello", 1, r1, &err) == -EEXIST, "v1 cannot be overwritten");
        berth_error_release(&err);
        ok(model_release_save(&m, "hello", 2, r1, &err) == 0, "save v2");
    }
    ok(model_release_current(&m, "hello", &version, &rel, &err) == 0 && version == 2 && rel, "current is v2");
    test_cgroup_names(&m, dir);
    ok(rm_rf(dir, &err) == 0, "cleanup");
    model_close(&m);
}

static void test_subid(void)
{
    char path[] = "/tmp/berth-test-subid-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "other:100000:65536\nberth:165536:65536\n# comment\nberth:300000:200000\n";
    unsigned long base = 0;
    struct berth_error *err = NULL;

    ok(fd >= 0 && write(fd, text, strlen(text)) == (ssize_t)strlen(text), "write subuid fixture");
    close(fd);
    ok(subid_count_slices(path, "berth", 1001, 65536) == 4, "1 + 3 whole slices");
    ok(subid_slice(path, "berth", 1001, 0, 65536, &base, &err) == 0 && base == 165536, "slice 0");
    ok(subid_slice(path, "berth", 1001, 1, 65536, &base, &err) == 0 && base == 300000, "slice 1 in the next entry");
    ok(subid_slice(path, "berth", 1001, 3, 65536, &base, &err) == 0 && base == 300000 + 2 * 65536, "slice 3");
    ok(subid_slice(path, "berth", 1001, 4, 65536, &base, &err) == -ERANGE &&
       strstr(berth_error_msg(&err), "berth setup"), "slice 4 does not exist and the message says what to run");
    berth_error_release(&err);
    ok(subid_slice(path, "1001", 1001, 0, 65536, &base, &err) < 0, "a name that is not there");
    berth_error_release(&err);
    ok(subid_first_free(path, 100000) == 500000, "first free id");
    unlink(path);
}

int main(void)
{
    test_names();
    test_units();
    test_model();
    test_tenants();
    test_subid();
    return tap_done();
}
