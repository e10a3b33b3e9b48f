/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/keys: SSH key records and authorized_keys (see keys.h). A key is
 * checked the way sshd would read it: a known type, base64 that decodes,
 * and a blob whose first field names the same type; its fingerprint is
 * OpenSSH's (SHA256: and the unpadded base64 of the blob's SHA-256), so
 * `ssh-keygen -lf KEY.pub` shows the same one. Writers hold the server's
 * records_lock, which also orders the authorized_keys rewrites.
 */
#include "control/keys.h"

#include <errno.h>
#include <limits.h>
#include <nettle/base64.h>
#include <nettle/sha2.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/xalloc.h"
#include "control/model.h"

#define KEY_MAX_BLOB 16384
#define BERTH_MARK "berth-tenant="

static const char *const key_types[] = {
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
};

/* The socket the forced commands name, set by keys_render(); guarded by records_lock. */
static char *rendered_socket;

char *keys_authorized_keys_path(void)
{
    const char *env = getenv("BERTH_AUTHORIZED_KEYS");
    struct passwd *pw;

    if (env && *env)
        return xstrdup(env);
    pw = getpwuid(geteuid());
    return xasprintf("%s/.ssh/authorized_keys", pw && pw->pw_dir ? pw->pw_dir : "/nonexistent");
}

/* ---- parsing ---------------------------------------------------------- */

struct parsed_key {
    char *type, *b64, *comment, *fingerprint;
};

static void parsed_key_release(struct parsed_key *k)
{
    free(k->type);
    free(k->b64);
    free(k->comment);
    free(k->fingerprint);
}

static bool known_type(const char *t)
{
    for (size_t i = 0; i < sizeof(key_types) / sizeof(key_types[0]); i++)
        if (strcmp(t, key_types[i]) == 0)
            return true;
    return false;
}

/* Decodes the base64 blob and checks its leading type string; writes the fingerprint. */
static int check_blob(struct parsed_key *k, struct berth_error **err)
{
    struct base64_decode_ctx ctx;
    uint8_t digest[SHA256_DIGEST_SIZE];
    char fp[BASE64_ENCODE_RAW_LENGTH(SHA256_DIGEST_SIZE) + 1];
    struct sha256_ctx sha;
    size_t b64len = strlen(k->b64), n = BASE64_DECODE_LENGTH(b64len), tlen;
    _cleanup_free_ uint8_t *blob = NULL;
    size_t fplen;

    if (b64len == 0 || b64len > KEY_MAX_BLOB)
        return berth_error_plain(err, EINVAL, "the key's base64 is empty or too long");
    blob = xmalloc(n + 1);
    base64_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &n, blob, b64len, k->b64) || !base64_decode_final(&ctx))
        return berth_error_plain(err, EINVAL, "the key is not valid base64");
    if (n < 4)
        return berth_error_plain(err, EINVAL, "the key is too short");
    tlen = ((size_t)blob[0] << 24) | ((size_t)blob[1] << 16) | ((size_t)blob[2] << 8) | blob[3];
    if (tlen != strlen(k->type) || tlen > n - 4 || memcmp(blob + 4, k->type, tlen) != 0)
        return berth_error_plain(err, EINVAL, "the key's data is not a %s key", k->type);
    sha256_init(&sha);
    sha256_update(&sha, n, blob);
    sha256_digest(&sha, sizeof(digest), digest);
    base64_encode_raw(fp, sizeof(digest), digest);
    fplen = BASE64_ENCODE_RAW_LENGTH(sizeof(digest));
    while (fplen && fp[fplen - 1] == '=')
        fplen--;
    fp[fplen] = '\0';
    k->fingerprint = xasprintf("SHA256:%s", fp);
    return 0;
}

/* One public key line: "TYPE BASE64 [COMMENT]" (no options: berth writes its own). */
static int parse_key(const char *text, struct parsed_key *k, struct berth_error **err)
{
    _cleanup_free_ char *line = NULL;
    char *p, *end, *save = NULL, *type, *b64, *comment;

    memset(k, 0, sizeof(*k));
    while (*text == ' ' || *text == '\t' || *text == '\n' || *text == '\r')
        text++;
    end = strchr(text, '\n');
    line = end ? xstrndup(text, (size_t)(end - text)) : xstrdup(text);
    if (end && end[strspn(end, " \t\r\n")])
        return berth_error_plain(err, EINVAL, "give one public key, not several lines");
    for (p = line; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t' && *p != '\r')
            return berth_error_plain(err, EINVAL, "the key holds control characters");
    type = strtok_r(line, " \t\r", &save);
    b64 = strtok_r(NULL, " \t\r", &save);
    comment = strtok_r(NULL, "\r", &save);
    if (!type || !b64)
        return berth_error_plain(err, EINVAL, "not an SSH public key (expected 'TYPE BASE64 [COMMENT]', "
                                 "as in ~/.ssh/id_ed25519.pub)");
    if (!known_type(type))
        return berth_error_plain(err, EINVAL, "unknown key type '%.40s' (ssh-ed25519, ssh-rsa, ecdsa-sha2-*)",
                                 type);
    k->type = xstrdup(type);
    k->b64 = xstrdup(b64);
    if (comment) {
        while (*comment == ' ' || *comment == '\t')
            comment++;
        /* The comment is only shown; keep it printable and short. */
        k->comment = xstrndup(comment, 100);
    }
    return check_blob(k, err);
}

/* ---- records ---------------------------------------------------------- */

static int load_records(struct server *s, json_t **ret, struct berth_error **err)
{
    _cleanup_free_ char *path = model_path(&s->model, "ssh-keys.json");
    _cleanup_error_ struct berth_error *e = NULL;
    json_t *doc = NULL;

    if (json_store_load(path, &doc, &e) < 0) {
        if (berth_error_code(&e) != ENOENT)
            return berth_error_plain(err, berth_error_code(&e), "%s", berth_error_msg(&e));
        doc = json_object();
    }
    if (!json_is_array(json_object_get(doc, "keys")))
        json_object_set_new(doc, "keys", json_array());
    *ret = doc;
    return 0;
}

static int save_records(struct server *s, const json_t *doc, struct berth_error **err)
{
    _cleanup_free_ char *path = model_path(&s->model, "ssh-keys.json");

    return json_store_save(path, doc, 0600, err);
}

/* ---- authorized_keys -------------------------------------------------- */

/* A word the user's shell reads literally inside single quotes. */
static bool quotable(const char *s)
{
    for (; *s; s++)
        if (*s == '\'' || *s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
            return false;
    return true;
}

static int render_locked(struct server *s, struct berth_error **err)
{
    _cleanup_free_ char *path = keys_authorized_keys_path();
    _cleanup_free_ char *exe = realpath("/proc/self/exe", NULL);
    _cleanup_strbuf_ struct strbuf old = STRBUF_INIT, out = STRBUF_INIT;
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_error_ struct berth_error *rerr = NULL;
    bool had_berth_lines = false;
    json_t *k;
    size_t i;
    int r;

    if ((r = load_records(s, &doc, err)) < 0)
        return r;
    if (!exe || !rendered_socket || !quotable(exe) || !quotable(rendered_socket))
        return berth_error_plain(err, EINVAL, "cannot name berth's binary or socket in a forced command "
                                 "(a quote or backslash in the path?)");
    if (read_file(path, &old, 4 << 20, &rerr) < 0 && berth_error_code(&rerr) != ENOENT)
        return berth_error_plain(err, berth_error_code(&rerr), "%s", berth_error_msg(&rerr));
    /* Lines berth did not write stay, in their order. */
    for (char *line = old.buf, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (strstr(line, " " BERTH_MARK))
            had_berth_lines = true;
        else if (*line)
            strbuf_addf(&out, "%s\n", line);
    }
    if (!had_berth_lines && json_array_size(json_object_get(doc, "keys")) == 0)
        return 0;
    json_array_foreach(json_object_get(doc, "keys"), i, k) {
        const char *tenant = json_get_str(k, "tenant");

        if (!tenant || !quotable(tenant))
            continue;
        strbuf_addf(&out, "command=\"'%s' git-shell --socket '%s' '%s'\",restrict %s %s " BERTH_MARK "%s\n", exe,
                    rendered_socket, tenant, json_get_str(k, "type"), json_get_str(k, "key"), tenant);
    }
    {
        _cleanup_free_ char *dir = xstrdup(path);
        char *slash = strrchr(dir, '/');

        if (slash && slash != dir) {
            *slash = '\0';
            if ((r = mkdir_p(dir, 0700, err)) < 0)
                return r;
        }
    }
    return write_file_atomic(path, out.buf ? out.buf : "", out.len, 0600, err);
}

int keys_render(struct server *s, const char *socket_path, struct berth_error **err)
{
    int r;

    pthread_mutex_lock(&s->records_lock);
    free(rendered_socket);
    rendered_socket = xstrdup(socket_path);
    r = render_locked(s, err);
    pthread_mutex_unlock(&s->records_lock);
    return r;
}

static char *now_iso8601(void)
{
    char buf[MODEL_TIME_LEN + 1];

    model_time_format(time(NULL), buf);
    return xstrdup(buf);
}

static int add_locked(struct server *s, const char *tenant, const struct parsed_key *pk, json_t **ret,
                      struct berth_error **err)
{
    _cleanup_json_ json_t *doc = NULL;
    _cleanup_free_ char *now = now_iso8601();
    json_t *keys, *k;
    size_t i;
    int r;

    if ((r = load_records(s, &doc, err)) < 0)
        return r;
    keys = json_object_get(doc, "keys");
    json_array_foreach(keys, i, k) {
        if (strcmp(json_get_str(k, "fingerprint") ?: "", pk->fingerprint) != 0)
            continue;
        if (strcmp(json_get_str(k, "tenant") ?: "", tenant) != 0)
            return berth_error_plain(err, EEXIST, "key %s is already used by another tenant: one key, one tenant",
                                     pk->fingerprint);
        if (ret)
            *ret = json_pack("{s:s,s:s,s:s}", "fingerprint", pk->fingerprint, "tenant", tenant, "type", pk->type);
        return 0;
    }
    k = json_pack("{s:s,s:s,s:s,s:s,s:s}", "fingerprint", pk->fingerprint, "tenant", tenant, "type", pk->type,
                  "key", pk->b64, "created_at", now);
    if (pk->comment)
        json_object_set_new(k, "comment", json_string(pk->comment));
    json_array_append_new(keys, k);
    if ((r = save_records(s, doc, err)) < 0)
        return r;
    if (rendered_socket && (r = render_locked(s, err)) < 0)
        return r;
    if (ret)
        *ret = json_pack("{s:s,s:s,s:s}", "fingerprint", pk->fingerprint, "tenant", tenant, "type", pk->type);
    return 0;
}

int keys_add(struct server *s, const char *tenant, const char *text, json_t **ret, struct berth_error **err)
{
    struct parsed_key pk;
    int r;

    if (ret)
        *ret = NULL;
    r = parse_key(text, &pk, err);
    if (r == 0) {
        pthread_mutex_lock(&s->records_lock);
        r = add_locked(s, tenant, &pk, ret, err);
        pthread_mutex_unlock(&s->records_lock);
    }
    parsed_key_release(&pk);
    return r;
}

int keys_list(struct server *s, const char *tenant, json_t **ret, struct berth_error **err)
{
    _cleanup_json_ json_t *doc = NULL;
    json_t *out = json_array(), *k;
    size_t i;
    int r;

    pthread_mutex_lock(&s->records_lock);
    r = load_records(s, &doc, err);
    pthread_mutex_unlock(&s->records_lock);
    if (r < 0) {
        json_decref(out);
        return r;
    }
    json_array_foreach(json_object_get(doc, "keys"), i, k) {
        json_t *row;

        if (tenant && strcmp(json_get_str(k, "tenant") ?: "", tenant) != 0)
            continue;
        row = json_deep_copy(k);
        json_object_del(row, "key");
        json_array_append_new(out, row);
    }
    *ret = out;
    return 0;
}

/* Removes the keys matching fingerprint (NULL: any) and tenant (NULL: any); how many went. */
static int remove_locked(struct server *s, const char *tenant, const char *fingerprint, size_t *ret_n,
                         struct berth_error **err)
{
    _cleanup_json_ json_t *doc = NULL;
    json_t *keys;
    size_t n = 0;
    int r;

    if ((r = load_records(s, &doc, err)) < 0)
        return r;
    keys = json_object_get(doc, "keys");
    for (size_t i = json_array_size(keys); i-- > 0;) {
        json_t *k = json_array_get(keys, i);

        if ((fingerprint && strcmp(json_get_str(k, "fingerprint") ?: "", fingerprint) != 0) ||
            (tenant && strcmp(json_get_str(k, "tenant") ?: "", tenant) != 0))
            continue;
        json_array_remove(keys, i);
        n++;
    }
    *ret_n = n;
    if (n == 0)
        return 0;
    if ((r = save_records(s, doc, err)) < 0)
        return r;
    return rendered_socket ? render_locked(s, err) : 0;
}

int keys_remove(struct server *s, const char *tenant, const char *fingerprint, struct berth_error **err)
{
    size_t n = 0;
    int r;

    pthread_mutex_lock(&s->records_lock);
    r = remove_locked(s, tenant, fingerprint, &n, err);
    pthread_mutex_unlock(&s->records_lock);
    if (r == 0 && n == 0)
        return berth_error_plain(err, ENOENT, "no key '%.100s'", fingerprint);
    return r;
}

int keys_drop_tenant(struct server *s, const char *tenant, struct berth_error **err)
{
    size_t n = 0;
    int r;

    pthread_mutex_lock(&s->records_lock);
    r = remove_locked(s, tenant, NULL, &n, err);
    pthread_mutex_unlock(&s->records_lock);
    return r;
}
