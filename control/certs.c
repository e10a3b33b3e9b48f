/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/certs: checking uploaded certificates with GnuTLS, storing them
 * beside the app's records, the self-signed default certificate, and
 * gathering every certificate with the names it serves for the router (see
 * certs.h for the layout and the rules). GnuTLS does every parse and every
 * signature; nothing here touches key material beyond handing it on.
 */
#include "control/certs.h"

#include <errno.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
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
#include "control/domains.h"
#include "common/banned.h"

/* A PEM file berth reads back: chains and keys are a few KiB. */
#define CERTS_FILE_MAX (256u << 10)
#define DEFAULT_VALIDITY_DAYS 3650

/* A parsed chain, leaf first. */
struct chain {
    gnutls_x509_crt_t *crts;
    unsigned n;
};

static void chain_release(struct chain *c)
{
    for (unsigned i = 0; i < c->n; i++)
        gnutls_x509_crt_deinit(c->crts[i]);
    gnutls_free(c->crts);
    c->crts = NULL;
    c->n = 0;
}

static void privkeyp(gnutls_x509_privkey_t *k)
{
    if (*k)
        gnutls_x509_privkey_deinit(*k);
}

static void crtp(gnutls_x509_crt_t *c)
{
    if (*c)
        gnutls_x509_crt_deinit(*c);
}

static void datump(gnutls_datum_t *d)
{
    gnutls_free(d->data);
    d->data = NULL;
}

#define _cleanup_chain_ _cleanup_(chain_release)
#define _cleanup_privkey_ _cleanup_(privkeyp)
#define _cleanup_crt_ _cleanup_(crtp)
#define _cleanup_datum_ _cleanup_(datump)


static time_t parse_iso8601(const char *s)
{
    struct tm tm = { 0 };
    const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;

    return end && !*end ? timegm(&tm) : 0;
}

/* ---------------------------------------------------------------- parsing */

static int parse_chain(const char *pem, struct chain *ret, struct berth_error **err)
{
    gnutls_datum_t d = { .data = (unsigned char *)pem, .size = (unsigned)strlen(pem) };
    int rc;

    if (!strstr(pem, "-----BEGIN CERTIFICATE-----"))
        return berth_error_plain(err, EINVAL, "the certificate is not in PEM form (-----BEGIN CERTIFICATE-----)");
    rc = gnutls_x509_crt_list_import2(&ret->crts, &ret->n, &d, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0)
        return berth_error_plain(err, EINVAL, "cannot parse the certificate chain: %s", gnutls_strerror(rc));
    if (ret->n == 0 || ret->n > CERTS_CHAIN_MAX) {
        unsigned n = ret->n;

        chain_release(ret);
        return berth_error_plain(err, EINVAL, "the chain holds %u certificates: 1 to %d are accepted", n,
                                 CERTS_CHAIN_MAX);
    }
    return 0;
}

static char *dn_string(gnutls_x509_crt_t crt, bool issuer);
static bool key_matches(gnutls_x509_crt_t leaf, gnutls_x509_privkey_t key);

/*
 * Puts the chain in order, leaf first: the leaf is the certificate of the
 * key, then each certificate's issuer. (GnuTLS's own sorting takes the
 * first certificate for the leaf, and a chain pasted root first would lose
 * its leaf.) Every certificate given must have its place in that order.
 */
static int order_chain(struct chain *c, gnutls_x509_privkey_t key, struct berth_error **err)
{
    gnutls_x509_crt_t sorted[CERTS_CHAIN_MAX];
    bool used[CERTS_CHAIN_MAX] = { false };
    unsigned n = 0, i;

    for (i = 0; i < c->n && !key_matches(c->crts[i], key); i++)
        ;
    if (i == c->n)
        return berth_error_plain(err, EINVAL, "the key does not match the certificate");
    sorted[n++] = c->crts[i];
    used[i] = true;
    /* Up to a self-issued certificate (a root), or to the last issuer given. */
    while (n < c->n && !gnutls_x509_crt_check_issuer(sorted[n - 1], sorted[n - 1])) {
        for (i = 0; i < c->n && (used[i] || !gnutls_x509_crt_check_issuer(sorted[n - 1], c->crts[i])); i++)
            ;
        if (i == c->n)
            break;
        sorted[n++] = c->crts[i];
        used[i] = true;
    }
    for (i = 0; i < c->n; i++) {
        if (!used[i]) {
            _cleanup_free_ char *dn = dn_string(c->crts[i], false);

            return berth_error_plain(err, EINVAL, "certificate '%s' is not in the chain of the key's certificate: "
                                     "give the server's certificate and its intermediates only", dn);
        }
    }
    memcpy(c->crts, sorted, n * sizeof(*sorted));
    return 0;
}

static int encrypted_key(struct berth_error **err)
{
    return berth_error_plain(err, EINVAL, "the key is encrypted: berth needs it without a passphrase "
                             "(decrypt it with 'openssl pkey -in KEY -out PLAIN.key')");
}

static int parse_key(const char *pem, gnutls_x509_privkey_t *ret, struct berth_error **err)
{
    gnutls_datum_t d = { .data = (unsigned char *)pem, .size = (unsigned)strlen(pem) };
    _cleanup_privkey_ gnutls_x509_privkey_t key = NULL;
    unsigned bits = 0;
    int rc;

    if (strstr(pem, "-----BEGIN ENCRYPTED PRIVATE KEY-----") || strstr(pem, "Proc-Type: 4,ENCRYPTED"))
        return encrypted_key(err);
    if (!strstr(pem, "PRIVATE KEY-----"))
        return berth_error_plain(err, EINVAL, "the key is not a PEM private key (-----BEGIN PRIVATE KEY-----)");
    if (gnutls_x509_privkey_init(&key) < 0)
        return berth_error_plain(err, ENOMEM, "cannot allocate a key");
    rc = gnutls_x509_privkey_import2(key, &d, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc == GNUTLS_E_DECRYPTION_FAILED)
        return encrypted_key(err);
    if (rc < 0)
        return berth_error_plain(err, EINVAL, "cannot parse the key: %s", gnutls_strerror(rc));
    if (gnutls_x509_privkey_get_pk_algorithm2(key, &bits) == GNUTLS_PK_RSA && bits < 2048)
        return berth_error_plain(err, EINVAL, "the RSA key has %u bits: at least 2048 are needed", bits);
    *ret = TAKE_PTR(key);
    return 0;
}

static bool key_matches(gnutls_x509_crt_t leaf, gnutls_x509_privkey_t key)
{
    unsigned char a[64], b[64];
    size_t na = sizeof(a), nb = sizeof(b);

    return gnutls_x509_crt_get_key_id(leaf, GNUTLS_KEYID_USE_SHA256, a, &na) == 0 &&
           gnutls_x509_privkey_get_key_id(key, GNUTLS_KEYID_USE_SHA256, b, &nb) == 0 && na == nb &&
           memcmp(a, b, na) == 0;
}

static void add_name(json_t *names, const char *raw)
{
    _cleanup_free_ char *name = NULL;
    json_t *v;
    size_t i;

    if (json_array_size(names) >= CERTS_NAMES_MAX || domain_normalise(raw, &name, NULL) < 0)
        return;
    json_array_foreach(names, i, v)
        if (strcmp(json_string_value(v), name) == 0)
            return;
    json_array_append_new(names, json_string(name));
}

/* The leaf's DNS subject alternative names, else its common name (when that is a DNS name). */
static json_t *read_names(gnutls_x509_crt_t leaf)
{
    json_t *names = json_array();
    char buf[512];
    size_t size;
    int rc;

    for (unsigned seq = 0;; seq++) {
        size = sizeof(buf) - 1;
        rc = gnutls_x509_crt_get_subject_alt_name(leaf, seq, buf, &size, NULL);
        if (rc == GNUTLS_E_SHORT_MEMORY_BUFFER)
            continue;
        if (rc < 0)
            break;
        if (rc != GNUTLS_SAN_DNSNAME)
            continue;
        buf[size] = '\0';
        add_name(names, buf);
    }
    if (json_array_size(names) > 0)
        return names;
    size = sizeof(buf) - 1;
    if (gnutls_x509_crt_get_dn_by_oid(leaf, GNUTLS_OID_X520_COMMON_NAME, 0, 0, buf, &size) == 0) {
        buf[size] = '\0';
        add_name(names, buf);
    }
    return names;
}

/* Whether the chain leads to a certificate authority the host trusts (shown, never required). */
static bool chain_trusted(const struct chain *c)
{
    gnutls_x509_trust_list_t tl;
    unsigned status = 1;

    if (gnutls_x509_trust_list_init(&tl, 0) < 0)
        return false;
    if (gnutls_x509_trust_list_add_system_trust(tl, 0, 0) <= 0 ||
        gnutls_x509_trust_list_verify_crt(tl, c->crts, c->n, 0, &status, NULL) < 0)
        status = 1;
    gnutls_x509_trust_list_deinit(tl, 1);
    return status == 0;
}

static char *dn_string(gnutls_x509_crt_t crt, bool issuer)
{
    _cleanup_datum_ gnutls_datum_t d = { 0 };
    int rc = issuer ? gnutls_x509_crt_get_issuer_dn3(crt, &d, 0) : gnutls_x509_crt_get_dn3(crt, &d, 0);

    return rc < 0 ? xstrdup("") : xstrndup((const char *)d.data, d.size);
}

/* id, dates, DNs and the PEM the store keeps. */
static int describe(const struct chain *c, gnutls_x509_privkey_t key, struct cert_info *ci,
                    struct berth_error **err)
{
    gnutls_x509_crt_t leaf = c->crts[0];
    _cleanup_datum_ gnutls_datum_t der = { 0 }, key_pem = { 0 };
    _cleanup_strbuf_ struct strbuf pem = STRBUF_INIT;
    char hex[SHA256_HEX_LEN + 1];

    if (gnutls_x509_crt_export2(leaf, GNUTLS_X509_FMT_DER, &der) < 0)
        return berth_error_plain(err, EINVAL, "cannot export the certificate");
    sha256_hex(der.data, der.size, hex);
    memcpy(ci->id, hex, CERTS_ID_LEN);
    ci->id[CERTS_ID_LEN] = '\0';
    for (unsigned i = 0; i < c->n; i++) {
        _cleanup_datum_ gnutls_datum_t d = { 0 };

        if (gnutls_x509_crt_export2(c->crts[i], GNUTLS_X509_FMT_PEM, &d) < 0)
            return berth_error_plain(err, EINVAL, "cannot export certificate %u of the chain", i + 1);
        strbuf_add(&pem, d.data, d.size);
    }
    if (gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &key_pem) < 0)
        return berth_error_plain(err, EINVAL, "cannot export the key");
    ci->cert_pem = strbuf_detach(&pem, NULL);
    ci->key_pem = xstrndup((const char *)key_pem.data, key_pem.size);
    ci->not_before = gnutls_x509_crt_get_activation_time(leaf);
    ci->not_after = gnutls_x509_crt_get_expiration_time(leaf);
    ci->issuer = dn_string(leaf, true);
    ci->subject = dn_string(leaf, false);
    ci->self_signed = gnutls_x509_crt_check_issuer(leaf, leaf) != 0;
    ci->trusted = chain_trusted(c);
    return 0;
}

int certs_parse(const char *chain_pem, const char *key_pem, struct cert_info *ret, struct berth_error **err)
{
    _cleanup_chain_ struct chain c = { 0 };
    _cleanup_privkey_ gnutls_x509_privkey_t key = NULL;
    struct cert_info ci = { 0 };
    char when[MODEL_TIME_LEN + 1];
    time_t expires;
    int r;

    if ((r = parse_chain(chain_pem, &c, err)) < 0 || (r = parse_key(key_pem, &key, err)) < 0 ||
        (r = order_chain(&c, key, err)) < 0)
        return r;
    expires = gnutls_x509_crt_get_expiration_time(c.crts[0]);
    if (expires == (time_t)-1)
        return berth_error_plain(err, EINVAL, "the certificate has no valid expiry date");
    if (expires < time(NULL)) {
        model_time_format(expires, when);
        return berth_error_plain(err, EINVAL, "the certificate expired on %s", when);
    }
    ci.names = read_names(c.crts[0]);
    if (json_array_size(ci.names) == 0) {
        json_decref(ci.names);
        return berth_error_plain(err, EINVAL, "the certificate names no domain (no DNS subject alternative "
                                 "name, and no common name that is one)");
    }
    if ((r = describe(&c, key, &ci, err)) < 0) {
        cert_info_release(&ci);
        return r;
    }
    *ret = ci;
    return 0;
}

void cert_info_release(struct cert_info *ci)
{
    json_decref(ci->names);
    free(ci->issuer);
    free(ci->subject);
    free(ci->cert_pem);
    if (ci->key_pem)
        explicit_bzero(ci->key_pem, strlen(ci->key_pem));
    free(ci->key_pem);
    *ci = (struct cert_info){ 0 };
}

json_t *cert_info_record(const struct cert_info *ci)
{
    char not_before[MODEL_TIME_LEN + 1], not_after[MODEL_TIME_LEN + 1], now[MODEL_TIME_LEN + 1];

    model_time_format(ci->not_before, not_before);
    model_time_format(ci->not_after, not_after);
    model_time_format(time(NULL), now);
    return json_pack("{s:s, s:O, s:s, s:s, s:s, s:s, s:b, s:b, s:s, s:s}", "id", ci->id, "names", ci->names,
                     "not_before", not_before, "not_after", not_after, "issuer", ci->issuer,
                     "subject", ci->subject, "self_signed", ci->self_signed, "trusted", ci->trusted,
                     "source", "manual", "created_at", now);
}

/* ---------------------------------------------------------------- names served */

static bool json_has_str(const json_t *list, const char *s)
{
    json_t *v;
    size_t i;

    json_array_foreach(list, i, v)
        if (json_is_string(v) && strcmp(json_string_value(v), s) == 0)
            return true;
    return false;
}

static void append_once(json_t *list, const char *s)
{
    if (!json_has_str(list, s))
        json_array_append_new(list, json_string(s));
}

void certs_match(const json_t *cert_names, const json_t *app_names, json_t *served, json_t *unused)
{
    json_t *c, *n;
    size_t i, k;

    /* The app's names the certificate is valid for. */
    json_array_foreach(app_names, i, n)
        json_array_foreach(cert_names, k, c)
            if (domain_cert_covers(json_string_value(c), json_string_value(n))) {
                append_once(served, json_string_value(n));
                break;
            }
    /* The certificate's names the app's wildcards route; the rest are unused. */
    json_array_foreach(cert_names, k, c) {
        bool used = false;

        json_array_foreach(app_names, i, n) {
            const char *cn = json_string_value(c), *an = json_string_value(n);

            if (domain_cert_covers(cn, an)) {
                used = true;
            } else if (domain_is_wildcard(an) && domain_route_covers(an, cn)) {
                used = true;
                append_once(served, cn);
            }
        }
        if (!used && unused)
            append_once(unused, json_string_value(c));
    }
}

/* ---------------------------------------------------------------- the store */

int certs_store(const struct model *m, const char *app, const struct cert_info *ci, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(m, "certs/%s", app);
    _cleanup_free_ char *key = model_path(m, "certs/%s/%s.key", app, ci->id);
    _cleanup_free_ char *pem = model_path(m, "certs/%s/%s.pem", app, ci->id);
    int r;

    if ((r = mkdir_p(dir, 0700, err)) < 0)
        return r;
    if ((r = write_file_atomic(key, ci->key_pem, strlen(ci->key_pem), 0600, err)) < 0)
        return r;
    return write_file_atomic(pem, ci->cert_pem, strlen(ci->cert_pem), 0600, err);
}

int certs_remove_files(const struct model *m, const char *app, const char *id, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(m, "certs/%s", app);
    _cleanup_free_ char *key = model_path(m, "certs/%s/%s.key", app, id);
    _cleanup_free_ char *pem = model_path(m, "certs/%s/%s.pem", app, id);

    if (unlink(pem) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "unlink '%s'", pem);
    if (unlink(key) < 0 && errno != ENOENT)
        return berth_error_make(err, errno, "unlink '%s'", key);
    (void)rmdir(dir);
    return 0;
}

/* ---------------------------------------------------------------- the default certificate */

static int generate_default(char **ret_cert, char **ret_key, struct berth_error **err)
{
    _cleanup_privkey_ gnutls_x509_privkey_t key = NULL;
    _cleanup_crt_ gnutls_x509_crt_t crt = NULL;
    _cleanup_datum_ gnutls_datum_t cert_pem = { 0 }, key_pem = { 0 };
    unsigned char serial[16];
    time_t now = time(NULL);
    int rc;

    if ((rc = gnutls_x509_privkey_init(&key)) < 0 || (rc = gnutls_x509_crt_init(&crt)) < 0 ||
        (rc = gnutls_x509_privkey_generate2(key, GNUTLS_PK_ECDSA,
                                            GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0, NULL, 0)) < 0 ||
        (rc = gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial))) < 0)
        return berth_error_plain(err, EIO, "generating the default key: %s", gnutls_strerror(rc));
    serial[0] &= 0x7f;          /* a positive serial number */
    if ((rc = gnutls_x509_crt_set_version(crt, 3)) < 0 ||
        (rc = gnutls_x509_crt_set_serial(crt, serial, sizeof(serial))) < 0 ||
        (rc = gnutls_x509_crt_set_activation_time(crt, now - 3600)) < 0 ||
        (rc = gnutls_x509_crt_set_expiration_time(crt, now + (time_t)DEFAULT_VALIDITY_DAYS * 86400)) < 0 ||
        (rc = gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, CERTS_DEFAULT_CN,
                                            strlen(CERTS_DEFAULT_CN))) < 0 ||
        (rc = gnutls_x509_crt_set_key(crt, key)) < 0 ||
        (rc = gnutls_x509_crt_set_basic_constraints(crt, 0, -1)) < 0 ||
        (rc = gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE)) < 0 ||
        (rc = gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0)) < 0 ||
        (rc = gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0)) < 0 ||
        (rc = gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &cert_pem)) < 0 ||
        (rc = gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, NULL, GNUTLS_PKCS_PLAIN, &key_pem)) < 0)
        return berth_error_plain(err, EIO, "generating the default certificate: %s", gnutls_strerror(rc));
    *ret_cert = xstrndup((const char *)cert_pem.data, cert_pem.size);
    *ret_key = xstrndup((const char *)key_pem.data, key_pem.size);
    return 0;
}

/* Whether the files hold a certificate and the key that goes with it. */
static bool pair_usable(const char *cert_path, const char *key_path)
{
    _cleanup_strbuf_ struct strbuf cert = STRBUF_INIT, key = STRBUF_INIT;
    _cleanup_chain_ struct chain c = { 0 };
    _cleanup_privkey_ gnutls_x509_privkey_t k = NULL;

    return read_file(cert_path, &cert, CERTS_FILE_MAX, NULL) == 0 &&
           read_file(key_path, &key, CERTS_FILE_MAX, NULL) == 0 && parse_chain(cert.buf, &c, NULL) == 0 &&
           parse_key(key.buf, &k, NULL) == 0 && key_matches(c.crts[0], k);
}

/*
 * Serialises generating the default pair: two threads publishing at once
 * must not each write one half. Process-wide because the pair is (one per
 * home, and one daemon per home).
 */
static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;

static int ensure_default_locked(const struct model *m, struct berth_error **err)
{
    _cleanup_free_ char *dir = model_path(m, "certs");
    _cleanup_free_ char *cert_path = model_path(m, "certs/default.pem");
    _cleanup_free_ char *key_path = model_path(m, "certs/default.key");
    _cleanup_free_ char *cert = NULL, *key = NULL;
    int r;

    if (pair_usable(cert_path, key_path))
        return 0;
    if ((r = mkdir_p(dir, 0700, err)) < 0 || (r = generate_default(&cert, &key, err)) < 0)
        return r;
    r = write_file_atomic(key_path, key, strlen(key), 0600, err);
    if (r == 0)
        r = write_file_atomic(cert_path, cert, strlen(cert), 0600, err);
    explicit_bzero(key, strlen(key));
    return r < 0 ? r : 1;
}

int certs_default_ensure(const struct model *m, struct berth_error **err)
{
    int r;

    pthread_mutex_lock(&default_lock);
    r = ensure_default_locked(m, err);
    pthread_mutex_unlock(&default_lock);
    return r;
}

/* ---------------------------------------------------------------- publishing */

/* One name a certificate could serve, before duplicates are settled. */
struct candidate {
    const char *name;           /* owned by the entry's names until settled */
    size_t entry;
    int rank;                   /* 2: the app's own name, 1: below one of its wildcards */
    bool expired;
    time_t not_after;
};

struct gather {
    struct certs_list *list;
    struct candidate *cands;
    size_t n_cands, alloc_cands;
    json_t *all_names;          /* {"name": "app"}: every app's names, to keep certificates off others' */
    time_t now;
};

static int read_pair(const struct model *m, const char *app, const char *id, char **ret_cert, char **ret_key)
{
    _cleanup_free_ char *cert_path = app ? model_path(m, "certs/%s/%s.pem", app, id)
                                         : model_path(m, "certs/default.pem");
    _cleanup_free_ char *key_path = app ? model_path(m, "certs/%s/%s.key", app, id)
                                        : model_path(m, "certs/default.key");
    _cleanup_strbuf_ struct strbuf cert = STRBUF_INIT, key = STRBUF_INIT;
    int r;

    if ((r = read_file(cert_path, &cert, CERTS_FILE_MAX, NULL)) < 0 ||
        (r = read_file(key_path, &key, CERTS_FILE_MAX, NULL)) < 0)
        return r;
    *ret_cert = strbuf_detach(&cert, NULL);
    *ret_key = strbuf_detach(&key, NULL);
    return 0;
}

static struct certs_entry *add_entry(struct certs_list *l)
{
    l->entries = xrealloc(l->entries, (l->n + 1) * sizeof(*l->entries));
    l->entries[l->n] = (struct certs_entry){ 0 };
    return &l->entries[l->n++];
}

static void add_candidate(struct gather *g, const char *name, size_t entry, int rank, time_t not_after)
{
    if (g->n_cands == g->alloc_cands) {
        g->alloc_cands = g->alloc_cands ? 2 * g->alloc_cands : 64;
        g->cands = xrealloc(g->cands, g->alloc_cands * sizeof(*g->cands));
    }
    g->cands[g->n_cands++] = (struct candidate){
        .name = name, .entry = entry, .rank = rank, .expired = not_after < g->now, .not_after = not_after,
    };
}

/* One stored certificate of `app`: an entry holding every name it serves, and a candidate per name. */
static void gather_cert(const struct model *m, struct gather *g, const char *app, const json_t *app_names,
                        const json_t *record)
{
    _cleanup_json_ json_t *served = json_array();
    const char *id = json_get_str(record, "id");
    struct certs_entry *e;
    char *cert = NULL, *key = NULL;
    json_t *v;
    size_t i, k = 0;

    if (!id || strlen(id) != CERTS_ID_LEN || strspn(id, "0123456789abcdef") != CERTS_ID_LEN)
        return;
    certs_match(json_object_get(record, "names"), app_names, served, NULL);
    if (json_array_size(served) == 0 || read_pair(m, app, id, &cert, &key) < 0)
        return;
    e = add_entry(g->list);
    e->app = xstrdup(app);
    e->id = xstrdup(id);
    e->cert_pem = cert;
    e->key_pem = key;
    e->not_after = parse_iso8601(json_get_str(record, "not_after"));
    e->names = xcalloc(json_array_size(served) + 1, sizeof(char *));
    json_array_foreach(served, i, v) {
        const char *name = json_string_value(v), *owner = json_get_str(g->all_names, name);
        bool own = json_has_str(app_names, name);

        /* A name below the app's wildcard that another app holds is that app's. */
        if (!own && owner && strcmp(owner, app) != 0)
            continue;
        e->names[k] = xstrdup(name);
        add_candidate(g, e->names[k], g->list->n - 1, own ? 2 : 1, e->not_after);
        k++;
    }
    e->n_names = k;
}

static int cmp_candidate(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;
    int c = strcmp(x->name, y->name);

    if (c)
        return c;
    if (x->rank != y->rank)
        return y->rank - x->rank;
    if (x->expired != y->expired)
        return x->expired ? 1 : -1;
    return x->not_after > y->not_after ? -1 : x->not_after < y->not_after;
}

/* Placed in a name's slot when another certificate won the name. */
static char lost_name[] = "";

static void drop_lost_names(struct certs_list *l)
{
    size_t kept = 1;

    for (size_t i = 1; i < l->n; i++) {
        struct certs_entry *e = &l->entries[i];
        size_t k = 0;

        for (size_t j = 0; j < e->n_names; j++)
            if (e->names[j] != lost_name)
                e->names[k++] = e->names[j];
        e->names[k] = NULL;
        e->n_names = k;
        if (k == 0) {
            free(e->app);
            free(e->id);
            free(e->names);
            free(e->cert_pem);
            explicit_bzero(e->key_pem, strlen(e->key_pem));
            free(e->key_pem);
            continue;
        }
        l->entries[kept++] = *e;
    }
    l->n = kept;
}

/* Every name once: the best candidate keeps it, the others lose it (see certs_load_all()). */
static void settle(struct gather *g)
{
    size_t first = 0;

    if (g->n_cands == 0)
        return;
    qsort(g->cands, g->n_cands, sizeof(*g->cands), cmp_candidate);
    for (size_t j = 1; j < g->n_cands; j++) {
        struct certs_entry *e;

        if (strcmp(g->cands[j].name, g->cands[first].name) != 0) {
            first = j;
            continue;
        }
        e = &g->list->entries[g->cands[j].entry];
        for (size_t k = 0; k < e->n_names; k++) {
            if (e->names[k] == g->cands[j].name) {
                free(e->names[k]);
                e->names[k] = lost_name;
                break;
            }
        }
    }
    drop_lost_names(g->list);
}

static int add_default(const struct model *m, struct certs_list *l, struct berth_error **err)
{
    struct certs_entry *e;
    char *cert = NULL, *key = NULL;
    int r;

    if ((r = certs_default_ensure(m, err)) < 0)
        return r;
    if ((r = read_pair(m, NULL, NULL, &cert, &key)) < 0)
        return berth_error_make(err, -r, "reading the default certificate");
    e = add_entry(l);
    e->id = xstrdup("default");
    e->names = xcalloc(2, sizeof(char *));
    e->names[0] = xstrdup("");
    e->n_names = 1;
    e->cert_pem = cert;
    e->key_pem = key;
    return 0;
}

/* Every app's record and names; `all` maps each name to its app. */
static int load_apps(const struct model *m, const char *berth_domain, json_t *records, json_t *names,
                     json_t *all, struct berth_error **err)
{
    _cleanup_json_ json_t *apps = NULL;
    json_t *app, *n;
    size_t i, k;
    int r;

    if ((r = model_app_list(m, &apps, err)) < 0)
        return r;
    json_array_foreach(apps, i, app) {
        const char *name = json_string_value(app);
        json_t *record = NULL, *app_names;

        if (model_app_load(m, name, &record, NULL) < 0)
            continue;
        app_names = domain_app_names(record, name, berth_domain);
        json_array_foreach(app_names, k, n)
            json_object_set(all, json_string_value(n), app);
        json_object_set_new(records, name, record);
        json_object_set_new(names, name, app_names);
    }
    return 0;
}

int certs_load_all(const struct model *m, const char *berth_domain, struct certs_list *ret,
                   struct berth_error **err)
{
    _cleanup_json_ json_t *records = json_object(), *names = json_object(), *all = json_object();
    struct certs_list l = { 0 };
    struct gather g = { .list = &l, .all_names = all, .now = time(NULL) };
    const char *app;
    json_t *record, *c;
    size_t i;
    int r;

    if ((r = add_default(m, &l, err)) < 0 || (r = load_apps(m, berth_domain, records, names, all, err)) < 0) {
        certs_list_release(&l);
        return r;
    }
    json_object_foreach(records, app, record)
        json_array_foreach(json_object_get(record, "certs"), i, c)
            gather_cert(m, &g, app, json_object_get(names, app), c);
    settle(&g);
    free(g.cands);
    *ret = l;
    return 0;
}

void certs_list_release(struct certs_list *l)
{
    for (size_t i = 0; i < l->n; i++) {
        struct certs_entry *e = &l->entries[i];

        for (size_t k = 0; k < e->n_names; k++)
            free(e->names[k]);
        free(e->names);
        free(e->app);
        free(e->id);
        free(e->cert_pem);
        if (e->key_pem)
            explicit_bzero(e->key_pem, strlen(e->key_pem));
        free(e->key_pem);
    }
    free(l->entries);
    *l = (struct certs_list){ 0 };
}

void certs_list_router(const struct certs_list *l, struct router_cert **ret, size_t *ret_n)
{
    size_t n = 0, k = 0;
    struct router_cert *out;

    for (size_t i = 0; i < l->n; i++)
        n += l->entries[i].n_names;
    out = xcalloc(n ? n : 1, sizeof(*out));
    for (size_t i = 0; i < l->n; i++) {
        for (size_t j = 0; j < l->entries[i].n_names; j++) {
            out[k].name = l->entries[i].names[j];
            out[k].cert_pem = l->entries[i].cert_pem;
            out[k].key_pem = l->entries[i].key_pem;
            k++;
        }
    }
    *ret = out;
    *ret_n = n;
}
