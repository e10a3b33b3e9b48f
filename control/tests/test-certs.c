/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests for control/certs.c: the checks on an uploaded pair (with
 * certificates and keys this test makes with GnuTLS: a valid pair, a key
 * that belongs to another certificate, an expired certificate, an encrypted
 * key, a weak RSA key, chains in and out of order), the names read from
 * the SANs or the common name, which names a certificate serves for an
 * app, the store's files, the default certificate (made once, then
 * reused), and what certs_load_all() hands the router.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/tests/tap.h"
#include "common/xalloc.h"
#include "control/certs.h"
#include "control/domains.h"
#include "control/model.h"

#define DAY 86400

static gnutls_x509_privkey_t make_key(gnutls_pk_algorithm_t pk, unsigned bits)
{
    gnutls_x509_privkey_t key;

    if (gnutls_x509_privkey_init(&key) < 0 || gnutls_x509_privkey_generate2(key, pk, bits, 0, NULL, 0) < 0)
        abort();
    return key;
}

static gnutls_x509_privkey_t make_ec_key(void)
{
    return make_key(GNUTLS_PK_ECDSA, GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1));
}

struct cert_spec {
    const char *cn;
    const char *const *sans;    /* DNS names, NULL-terminated; may be NULL */
    bool ip_san;                /* adds 192.0.2.1, which is no DNS name */
    long from_days, to_days;    /* validity, relative to now */
    bool ca;
};

/* A certificate for `key`, signed by `ca`/`ca_key` (NULL: self-signed). */
static gnutls_x509_crt_t make_cert(gnutls_x509_privkey_t key, const struct cert_spec *spec,
                                   gnutls_x509_crt_t ca, gnutls_x509_privkey_t ca_key)
{
    static unsigned char serial = 1;
    static const unsigned char ip[4] = { 192, 0, 2, 1 };
    time_t now = time(NULL);
    gnutls_x509_crt_t crt;
    int rc = 0;

    serial = (unsigned char)((serial + 1) & 0x7f);
    if (gnutls_x509_crt_init(&crt) < 0)
        abort();
    rc |= gnutls_x509_crt_set_version(crt, 3);
    rc |= gnutls_x509_crt_set_serial(crt, &serial, 1);
    rc |= gnutls_x509_crt_set_activation_time(crt, now + spec->from_days * DAY);
    rc |= gnutls_x509_crt_set_expiration_time(crt, now + spec->to_days * DAY);
    if (spec->cn)
        rc |= gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, spec->cn, strlen(spec->cn));
    for (const char *const *s = spec->sans; s && *s; s++)
        rc |= gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, *s, strlen(*s), GNUTLS_FSAN_APPEND);
    if (spec->ip_san)
        rc |= gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_IPADDRESS, ip, 4, GNUTLS_FSAN_APPEND);
    rc |= gnutls_x509_crt_set_key(crt, key);
    rc |= gnutls_x509_crt_set_basic_constraints(crt, spec->ca, -1);
    if (spec->ca)
        rc |= gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN | GNUTLS_KEY_CRL_SIGN);
    rc |= gnutls_x509_crt_sign2(crt, ca ? ca : crt, ca ? ca_key : key, GNUTLS_DIG_SHA256, 0);
    if (rc < 0)
        abort();
    return crt;
}

static char *crt_pem(gnutls_x509_crt_t crt)
{
    gnutls_datum_t d;
    char *s;

    if (gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_PEM, &d) < 0)
        abort();
    s = xstrndup((const char *)d.data, d.size);
    gnutls_free(d.data);
    return s;
}

/* The key as PEM: plain PKCS #8, or encrypted with `password`. */
static char *key_pem(gnutls_x509_privkey_t key, const char *password)
{
    gnutls_datum_t d;
    char *s;

    if (gnutls_x509_privkey_export2_pkcs8(key, GNUTLS_X509_FMT_PEM, password,
                                          password ? GNUTLS_PKCS_PBES2_AES_256 : GNUTLS_PKCS_PLAIN, &d) < 0)
        abort();
    s = xstrndup((const char *)d.data, d.size);
    gnutls_free(d.data);
    return s;
}

/* certs_parse(); on failure, whether the message holds `why`. */
static int parse(const char *cert, const char *key, struct cert_info *ci, const char *why)
{
    _cleanup_error_ struct berth_error *err = NULL;
    int r = certs_parse(cert, key, ci, &err);

    if (r < 0 && why && !strstr(berth_error_msg(&err), why)) {
        printf("# unexpected message: %s\n", berth_error_msg(&err));
        return 0;
    }
    return r;
}

static bool names_are(const json_t *names, const char *const *want)
{
    size_t n = 0;

    for (; want[n]; n++)
        if (!json_is_string(json_array_get(names, n)) || strcmp(json_string_value(json_array_get(names, n)), want[n]))
            return false;
    return json_array_size(names) == n;
}

static void test_valid_pair(void)
{
    gnutls_x509_privkey_t key = make_ec_key();
    const struct cert_spec spec = {
        .cn = "ignored.example", .sans = (const char *const[]){ "WWW.example.com", "example.com", "*.example.org",
                                                                "www.example.com", NULL },
        .ip_san = true, .from_days = -1, .to_days = 365,
    };
    gnutls_x509_crt_t crt = make_cert(key, &spec, NULL, NULL);
    _cleanup_free_ char *cert = crt_pem(crt), *k = key_pem(key, NULL);
    _cleanup_(cert_info_release) struct cert_info ci = { 0 };
    _cleanup_json_ json_t *record = NULL;

    ok(parse(cert, k, &ci, NULL) == 0, "a valid pair is accepted");
    ok(names_are(ci.names, (const char *const[]){ "www.example.com", "example.com", "*.example.org", NULL }),
       "names from the DNS SANs, normalised, once each, without the IP SAN or the CN");
    ok(strlen(ci.id) == CERTS_ID_LEN && strspn(ci.id, "0123456789abcdef") == CERTS_ID_LEN, "a 16-hex id");
    ok(ci.self_signed && !ci.trusted, "self-signed, so not trusted");
    ok(strstr(ci.cert_pem, "-----BEGIN CERTIFICATE-----") && strstr(ci.key_pem, "-----BEGIN PRIVATE KEY-----"),
       "the chain and an unencrypted PKCS #8 key are kept");
    ok(ci.not_after > time(NULL) + 364 * DAY && ci.not_after < time(NULL) + 366 * DAY, "expiry read");
    record = cert_info_record(&ci);
    ok(strcmp(json_get_str(record, "id"), ci.id) == 0 && strcmp(json_get_str(record, "source"), "manual") == 0 &&
       json_get_str(record, "not_after") && strlen(json_get_str(record, "not_after")) == 20 &&
       json_get_str(record, "not_after")[19] == 'Z' && strstr(json_get_str(record, "issuer"), "ignored.example") &&
       json_array_size(json_object_get(record, "names")) == 3 && !json_object_get(record, "key"),
       "the record: id, source, ISO 8601 expiry, issuer, names, and no key");
    {
        struct cert_info again = { 0 };

        ok(parse(cert, k, &again, NULL) == 0 && strcmp(again.id, ci.id) == 0, "the same certificate, the same id");
        cert_info_release(&again);
    }
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_privkey_deinit(key);
}

static void test_refused(void)
{
    gnutls_x509_privkey_t key = make_ec_key(), other = make_ec_key();
    const struct cert_spec ok_spec = { .sans = (const char *const[]){ "www.example.com", NULL }, .to_days = 30 };
    const struct cert_spec old_spec = { .sans = ok_spec.sans, .from_days = -400, .to_days = -1 };
    const struct cert_spec cn_spec = { .cn = "Shop.Example.com", .to_days = 30 };
    const struct cert_spec no_name = { .cn = "Example Corp", .to_days = 30 };
    gnutls_x509_crt_t crt = make_cert(key, &ok_spec, NULL, NULL), old = make_cert(key, &old_spec, NULL, NULL);
    gnutls_x509_crt_t cn_only = make_cert(key, &cn_spec, NULL, NULL), nameless = make_cert(key, &no_name, NULL, NULL);
    _cleanup_free_ char *cert = crt_pem(crt), *k = key_pem(key, NULL), *k2 = key_pem(other, NULL);
    _cleanup_free_ char *old_pem = crt_pem(old), *enc = key_pem(key, "secret");
    _cleanup_free_ char *cn_pem = crt_pem(cn_only), *nameless_pem = crt_pem(nameless);
    struct cert_info ci = { 0 };

    ok(parse(cert, k2, &ci, "does not match") == -EINVAL, "a key of another certificate is refused");
    ok(parse(old_pem, k, &ci, "expired on") == -EINVAL, "an expired certificate is refused");
    ok(strstr(enc, "ENCRYPTED") && parse(cert, enc, &ci, "the key is encrypted") == -EINVAL,
       "an encrypted key is refused with a clear message");
    ok(parse("hello", k, &ci, "not in PEM form") == -EINVAL, "text that is no certificate is refused");
    ok(parse("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", k, &ci, "cannot parse") == -EINVAL,
       "a broken certificate is refused");
    ok(parse(cert, "nope", &ci, "not a PEM private key") == -EINVAL &&
       parse(cert, cert, &ci, "not a PEM private key") == -EINVAL, "a key that is no key is refused");
    ok(parse(cert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", &ci, "cannot parse the key")
       == -EINVAL, "a broken key is refused");
    ok(parse(nameless_pem, k, &ci, "names no domain") == -EINVAL, "a certificate naming no domain is refused");
    ok(parse(cn_pem, k, &ci, NULL) == 0 && names_are(ci.names, (const char *const[]){ "shop.example.com", NULL }),
       "without SANs the common name is the name");
    cert_info_release(&ci);
    {
        gnutls_x509_privkey_t weak = make_key(GNUTLS_PK_RSA, 1024), rsa = make_key(GNUTLS_PK_RSA, 2048);
        gnutls_x509_crt_t wc = make_cert(weak, &ok_spec, NULL, NULL), rc = make_cert(rsa, &ok_spec, NULL, NULL);
        _cleanup_free_ char *wc_pem = crt_pem(wc), *wk = key_pem(weak, NULL);
        _cleanup_free_ char *rc_pem = crt_pem(rc), *rk = key_pem(rsa, NULL);

        ok(parse(wc_pem, wk, &ci, "at least 2048") == -EINVAL, "a 1024-bit RSA key is refused");
        ok(parse(rc_pem, rk, &ci, NULL) == 0, "a 2048-bit RSA key is fine");
        cert_info_release(&ci);
        gnutls_x509_crt_deinit(wc);
        gnutls_x509_crt_deinit(rc);
        gnutls_x509_privkey_deinit(weak);
        gnutls_x509_privkey_deinit(rsa);
    }
    gnutls_x509_crt_deinit(crt);
    gnutls_x509_crt_deinit(old);
    gnutls_x509_crt_deinit(cn_only);
    gnutls_x509_crt_deinit(nameless);
    gnutls_x509_privkey_deinit(key);
    gnutls_x509_privkey_deinit(other);
}

static void test_chain(void)
{
    gnutls_x509_privkey_t ca_key = make_ec_key(), key = make_ec_key(), stray_key = make_ec_key();
    const struct cert_spec ca_spec = { .cn = "Test CA", .to_days = 3650, .ca = true };
    const struct cert_spec leaf_spec = { .cn = "leaf", .sans = (const char *const[]){ "api.example.com", NULL },
                                         .to_days = 90 };
    const struct cert_spec stray_spec = { .cn = "Stray CA", .to_days = 3650, .ca = true };
    gnutls_x509_crt_t ca = make_cert(ca_key, &ca_spec, NULL, NULL), leaf = make_cert(key, &leaf_spec, ca, ca_key);
    gnutls_x509_crt_t stray = make_cert(stray_key, &stray_spec, NULL, NULL);
    _cleanup_free_ char *ca_pem = crt_pem(ca), *leaf_pem = crt_pem(leaf), *stray_pem = crt_pem(stray);
    _cleanup_free_ char *k = key_pem(key, NULL);
    _cleanup_free_ char *in_order = xasprintf("%s%s", leaf_pem, ca_pem), *reversed = xasprintf("%s%s", ca_pem, leaf_pem);
    _cleanup_free_ char *bad = xasprintf("%s%s", leaf_pem, stray_pem);
    struct cert_info ci = { 0 };

    ok(parse(in_order, k, &ci, NULL) == 0 && !ci.self_signed && strstr(ci.issuer, "Test CA") &&
       names_are(ci.names, (const char *const[]){ "api.example.com", NULL }) &&
       strstr(ci.cert_pem + 10, "-----BEGIN CERTIFICATE-----"), "leaf then CA: accepted, both kept");
    {
        _cleanup_free_ char *first_id = xstrdup(ci.id);

        cert_info_release(&ci);
        ok(parse(reversed, k, &ci, NULL) == 0 && strcmp(ci.id, first_id) == 0,
           "CA then leaf: sorted, the same leaf");
        cert_info_release(&ci);
    }
    ok(parse(bad, k, &ci, "'CN=Stray CA' is not in the chain") == -EINVAL, "a certificate that issued nothing in the chain is refused");
    gnutls_x509_crt_deinit(ca);
    gnutls_x509_crt_deinit(leaf);
    gnutls_x509_crt_deinit(stray);
    gnutls_x509_privkey_deinit(ca_key);
    gnutls_x509_privkey_deinit(key);
    gnutls_x509_privkey_deinit(stray_key);
}

/* certs_match() with lists written as JSON. */
static bool match_is(const char *cert_names, const char *app_names, const char *want_served, const char *want_unused)
{
    _cleanup_json_ json_t *c = json_loads(cert_names, 0, NULL), *a = json_loads(app_names, 0, NULL);
    _cleanup_json_ json_t *served = json_array(), *unused = json_array();
    _cleanup_json_ json_t *ws = json_loads(want_served, 0, NULL), *wu = json_loads(want_unused, 0, NULL);

    certs_match(c, a, served, unused);
    return json_equal(served, ws) && json_equal(unused, wu);
}

static void test_match(void)
{
    ok(match_is("[\"www.example.com\", \"example.com\"]", "[\"www.example.com\", \"hello.localhost\"]",
                "[\"www.example.com\"]", "[\"example.com\"]"), "a SAN the app holds is served; the other is unused");
    ok(match_is("[\"*.example.com\"]", "[\"a.example.com\", \"b.example.com\", \"x.y.example.com\"]",
                "[\"a.example.com\", \"b.example.com\"]", "[]"),
       "a wildcard certificate serves the app's names one label below");
    ok(match_is("[\"www.example.com\", \"a.b.example.com\"]", "[\"*.example.com\"]",
                "[\"www.example.com\", \"a.b.example.com\"]", "[]"),
       "names below the app's wildcard domain are served by their own name");
    ok(match_is("[\"*.example.com\"]", "[\"*.example.com\"]", "[\"*.example.com\"]", "[]"),
       "a wildcard certificate serves the same wildcard domain");
    ok(match_is("[\"other.org\"]", "[\"www.example.com\", \"hello.localhost\"]", "[]", "[\"other.org\"]"),
       "a certificate for none of the app's names serves nothing");
    ok(match_is("[\"hello.localhost\"]", "[\"hello.localhost\"]", "[\"hello.localhost\"]", "[]"),
       "the default name counts");
}

static void checked_pair(gnutls_x509_privkey_t key, const struct cert_spec *spec, struct cert_info *ret)
{
    gnutls_x509_crt_t crt = make_cert(key, spec, NULL, NULL);
    _cleanup_free_ char *cert = crt_pem(crt), *k = key_pem(key, NULL);

    if (certs_parse(cert, k, ret, NULL) < 0)
        abort();
    gnutls_x509_crt_deinit(crt);
}

/* An app with domains and the certificates `cis` stored the way the API stores them. */
static void make_app(const struct model *m, const char *app, const char *domains_json, struct cert_info *cis,
                     size_t n)
{
    _cleanup_json_ json_t *record = NULL;
    json_t *certs = json_array();

    (void)model_app_create(m, app, "admin", NULL);
    (void)model_app_load(m, app, &record, NULL);
    json_object_set_new(record, "domains", json_loads(domains_json, 0, NULL));
    for (size_t i = 0; i < n; i++) {
        if (certs_store(m, app, &cis[i], NULL) < 0)
            abort();
        json_array_append_new(certs, cert_info_record(&cis[i]));
    }
    json_object_set_new(record, "certs", certs);
    (void)model_app_save(m, app, record, NULL);
}

static const struct certs_entry *find_entry(const struct certs_list *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->entries[i].id, id) == 0)
            return &l->entries[i];
    return NULL;
}

static bool entry_names(const struct certs_entry *e, const char *const *want)
{
    size_t n = 0;

    for (; want[n]; n++)
        if (!e || n >= e->n_names || strcmp(e->names[n], want[n]) != 0)
            return false;
    return e && e->n_names == n && e->names[n] == NULL;
}

static void test_default(const struct model *m)
{
    _cleanup_free_ char *pem = model_path(m, "certs/default.pem"), *key = model_path(m, "certs/default.key");
    _cleanup_strbuf_ struct strbuf first = STRBUF_INIT, second = STRBUF_INIT;
    struct stat st1, st2;
    gnutls_x509_crt_t crt = NULL;
    char cn[64];
    size_t cn_len = sizeof(cn);

    ok(certs_default_ensure(m, NULL) == 1, "the default certificate is made at first use");
    ok(stat(pem, &st1) == 0 && (st1.st_mode & 0777) == 0600 && stat(key, &st2) == 0 &&
       (st2.st_mode & 0777) == 0600, "default.pem and default.key are mode 0600");
    ok(read_file(pem, &first, 0, NULL) == 0 && certs_default_ensure(m, NULL) == 0 &&
       read_file(pem, &second, 0, NULL) == 0 && strcmp(first.buf, second.buf) == 0, "and reused afterwards");
    if (gnutls_x509_crt_init(&crt) == 0) {
        gnutls_datum_t d = { .data = (unsigned char *)first.buf, .size = (unsigned)first.len };

        ok(gnutls_x509_crt_import(crt, &d, GNUTLS_X509_FMT_PEM) == 0 &&
           gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn, &cn_len) == 0 &&
           strcmp(cn, CERTS_DEFAULT_CN) == 0 &&
           gnutls_x509_crt_get_expiration_time(crt) > time(NULL) + 3649L * DAY &&
           gnutls_x509_crt_get_pk_algorithm(crt, NULL) == GNUTLS_PK_ECDSA,
           "CN 'berth default', ECDSA, valid 10 years");
        gnutls_x509_crt_deinit(crt);
    }
    ok(write_file_atomic(key, "junk\n", 5, 0600, NULL) == 0 && certs_default_ensure(m, NULL) == 1,
       "a broken pair is made again");
}

static void test_load_all(void)
{
    char dir[] = "/tmp/berth-test-certs-XXXXXX";
    gnutls_x509_privkey_t key = make_ec_key();
    struct cert_info cis[5];
    struct certs_list l = { 0 };
    struct model m;

    memset(cis, 0, sizeof(cis));
    if (!mkdtemp(dir) || model_open(&m, dir, NULL) < 0 || model_init_home(&m, NULL, NULL) < 0) {
        ok(false, "temporary home");
        return;
    }
    test_default(&m);
    /* alpha: two certificates for www (the later expiry wins), one for a name it no longer holds */
    checked_pair(key, &(struct cert_spec){ .sans = (const char *const[]){ "www.example.com", NULL },
                                                   .to_days = 30 }, &cis[0]);
    checked_pair(key, &(struct cert_spec){ .sans = (const char *const[]){ "www.example.com",
                                                                                  "example.com", NULL },
                                                   .to_days = 300 }, &cis[1]);
    checked_pair(key, &(struct cert_spec){ .sans = (const char *const[]){ "gone.example.com", NULL },
                                                   .to_days = 300 }, &cis[2]);
    make_app(&m, "alpha", "[\"www.example.com\", \"example.com\"]", cis, 3);
    /* beta: a wildcard domain, a certificate for a name below it, and one that alpha's www would take */
    checked_pair(key, &(struct cert_spec){ .sans = (const char *const[]){ "shop.wild.org",
                                                                                  "www.example.com", NULL },
                                                   .to_days = 30 }, &cis[3]);
    make_app(&m, "beta", "[\"*.wild.org\"]", &cis[3], 1);
    {
        _cleanup_free_ char *p = model_path(&m, "certs/alpha/%s.key", cis[0].id);
        struct stat st;

        ok(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600, "a stored key is mode 0600");
    }
    ok(certs_load_all(&m, "localhost", &l, NULL) == 0, "load every certificate");
    ok(l.n >= 1 && !l.entries[0].app && strcmp(l.entries[0].id, "default") == 0 &&
       entry_names(&l.entries[0], (const char *const[]){ "", NULL }) && strstr(l.entries[0].key_pem, "PRIVATE KEY"),
       "the default certificate comes first, named \"\"");
    ok(!find_entry(&l, cis[0].id), "of two certificates for one name, the one expiring first is left out");
    ok(entry_names(find_entry(&l, cis[1].id), (const char *const[]){ "www.example.com", "example.com", NULL }),
       "the other serves both of alpha's names");
    ok(!find_entry(&l, cis[2].id), "a certificate for a name the app no longer holds is left out");
    ok(entry_names(find_entry(&l, cis[3].id), (const char *const[]){ "shop.wild.org", NULL }),
       "beta's certificate serves the name below its wildcard, not alpha's www");
    {
        struct router_cert *rc = NULL;
        size_t n = 0;

        certs_list_router(&l, &rc, &n);
        ok(n == 4 && strcmp(rc[0].name, "") == 0 && rc[1].cert_pem && rc[1].key_pem,
           "flattened for the router: one entry per name");
        free(rc);
    }
    certs_list_release(&l);
    ok(certs_remove_files(&m, "beta", cis[3].id, NULL) == 0 && certs_load_all(&m, "localhost", &l, NULL) == 0 &&
       !find_entry(&l, cis[3].id), "a record whose files are gone is skipped");
    certs_list_release(&l);
    for (size_t i = 0; i < 5; i++)
        cert_info_release(&cis[i]);
    gnutls_x509_privkey_deinit(key);
    ok(rm_rf(dir, NULL) == 0, "cleanup");
    model_close(&m);
}

int main(void)
{
    test_valid_pair();
    test_refused();
    test_chain();
    test_match();
    test_load_all();
    return tap_done();
}
