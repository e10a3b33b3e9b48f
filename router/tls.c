/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Certificates for the HTTPS listener, chosen by SNI. router_set_certs()
 * parses the PEM it is given into a cert_set (GnuTLS pcerts and private
 * keys, each key checked against its certificate) and publishes it the way
 * route tables are published: immutable, swapped under the router's table
 * lock, reference-counted. libmicrohttpd's TLS daemons ask for a
 * certificate through tls_cert_callback() during each handshake (on a
 * loop's thread); it picks, for the name the client sent, the certificate
 * of that exact name, else the wildcard covering its first label
 * ("*.example.com" for "www.example.com", as RFC 6125 matches), else the
 * default one (name ""), and the connection holds the set until it
 * closes, so a publish never frees keys a live session still uses.
 */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdlib.h>
#include <string.h>

#include "common/xalloc.h"
#include "router/internal.h"
#include "common/banned.h"

#define CHAIN_MAX 16

struct cert_entry {
    char *name;                   /* normalised; a wildcard without its '*' (".example.com"); "" = default */
    bool wildcard;
    gnutls_pcert_st pcerts[CHAIN_MAX];
    unsigned npcerts;
    gnutls_privkey_t key;
};

struct cert_set {
    atomic_int refs;
    size_t n;
    struct cert_entry *certs;
};

static void entry_clear(struct cert_entry *e)
{
    for (unsigned i = 0; i < e->npcerts; i++)
        gnutls_pcert_deinit(&e->pcerts[i]);
    e->npcerts = 0;
    if (e->key)
        gnutls_privkey_deinit(e->key);
    e->key = NULL;
    free(e->name);
    e->name = NULL;
}

struct cert_set *tls_cert_set_ref(struct cert_set *s)
{
    if (s)
        atomic_fetch_add(&s->refs, 1);
    return s;
}

void tls_cert_set_unref(struct cert_set *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    for (size_t i = 0; i < s->n; i++)
        entry_clear(&s->certs[i]);
    free(s->certs);
    free(s);
}

/* The key must be the certificate's: a signature made with one verifies with the other. */
static int key_matches(const struct cert_entry *e)
{
    static const char probe[] = "berth: does this key belong to this certificate?";
    gnutls_datum_t data = { (unsigned char *)probe, sizeof(probe) - 1 }, sig = { NULL, 0 };
    gnutls_sign_algorithm_t algo;
    int pk = gnutls_privkey_get_pk_algorithm(e->key, NULL), rc;

    algo = gnutls_pk_to_sign(pk, GNUTLS_DIG_SHA256);
    if (pk == GNUTLS_PK_EDDSA_ED25519)
        algo = GNUTLS_SIGN_EDDSA_ED25519;
    if (algo == GNUTLS_SIGN_UNKNOWN)
        return 0;   /* a key type we cannot probe: GnuTLS checks at handshake */
    rc = gnutls_privkey_sign_data2(e->key, algo, 0, &data, &sig);
    if (rc < 0)
        return rc;
    rc = gnutls_pubkey_verify_data2(e->pcerts[0].pubkey, algo, 0, &data, &sig);
    gnutls_free(sig.data);
    return rc < 0 ? rc : 0;
}

static int entry_load(struct cert_entry *e, const struct router_cert *c, struct berth_error **err)
{
    gnutls_datum_t cert = { (unsigned char *)c->cert_pem, (unsigned)strlen(c->cert_pem) };
    gnutls_datum_t key = { (unsigned char *)c->key_pem, (unsigned)strlen(c->key_pem) };
    const char *shown = c->name[0] ? c->name : "(default)";
    int rc;

    e->npcerts = CHAIN_MAX;
    rc = gnutls_pcert_list_import_x509_raw(e->pcerts, &e->npcerts, &cert, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || e->npcerts == 0) {
        e->npcerts = 0;
        return berth_error_plain(err, EINVAL, "certificate for '%s': %s", shown,
                                 rc < 0 ? gnutls_strerror(rc) : "no certificate in the PEM text");
    }
    rc = gnutls_privkey_init(&e->key);
    if (rc >= 0)
        rc = gnutls_privkey_import_x509_raw(e->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (rc < 0)
        return berth_error_plain(err, EINVAL, "private key for '%s': %s", shown, gnutls_strerror(rc));
    if (key_matches(e) < 0)
        return berth_error_plain(err, EINVAL, "the private key for '%s' does not belong to its certificate",
                                 shown);
    return 0;
}

/* "" stays the default; "*.Example.COM." becomes a wildcard ".example.com". */
static int entry_name(struct cert_entry *e, const char *name, struct berth_error **err)
{
    char host[HOST_MAX + 1];
    bool wildcard = name[0] == '*' && name[1] == '.';

    if (!name[0]) {
        e->name = xstrdup("");
        return 0;
    }
    if (host_normalise(wildcard ? name + 2 : name, host) < 0 || strchr(host, ':'))
        return berth_error_plain(err, EINVAL, "certificate name '%s' is not a host name", name);
    e->wildcard = wildcard;
    e->name = wildcard ? xasprintf(".%s", host) : xstrdup(host);
    return 0;
}

int tls_cert_set_build(const struct router_cert *certs, size_t n, struct cert_set **ret,
                       struct berth_error **err)
{
    struct cert_set *s = xcalloc(1, sizeof(*s));

    atomic_init(&s->refs, 1);
    s->certs = xcalloc(n ? n : 1, sizeof(*s->certs));
    for (size_t i = 0; i < n; i++) {
        struct cert_entry *e = &s->certs[s->n++];
        int rc;

        if (!certs[i].name || !certs[i].cert_pem || !certs[i].key_pem) {
            tls_cert_set_unref(s);
            return berth_error_plain(err, EINVAL, "certificate %zu lacks a name, a certificate or a key", i);
        }
        rc = entry_name(e, certs[i].name, err);
        if (rc == 0)
            rc = entry_load(e, &certs[i], err);
        for (size_t j = 0; rc == 0 && j + 1 < s->n; j++)
            if (strcmp(s->certs[j].name, e->name) == 0)
                rc = berth_error_plain(err, EEXIST, "two certificates for '%s'", certs[i].name);
        if (rc < 0) {
            tls_cert_set_unref(s);
            return rc;
        }
    }
    *ret = s;
    return 0;
}

static const struct cert_entry *find(const struct cert_set *s, const char *name)
{
    const char *dot = name[0] ? strchr(name, '.') : NULL;
    const struct cert_entry *wild = NULL, *dflt = NULL;

    for (size_t i = 0; i < s->n; i++) {
        const struct cert_entry *e = &s->certs[i];
        if (!e->name[0])
            dflt = e;
        else if (!e->wildcard && strcmp(e->name, name) == 0)
            return e;
        else if (e->wildcard && dot && dot != name && strcmp(e->name, dot) == 0)
            wild = e;
    }
    return wild ? wild : dflt;
}

/* The name the client asked for (SNI), normalised; "" when it sent none. */
static void sni_name(gnutls_session_t session, char out[HOST_MAX + 1])
{
    char raw[HOST_MAX + 1];
    size_t len = sizeof(raw) - 1;
    unsigned type;

    out[0] = '\0';
    if (gnutls_server_name_get(session, raw, &len, &type, 0) < 0 || type != GNUTLS_NAME_DNS)
        return;
    raw[len < sizeof(raw) ? len : sizeof(raw) - 1] = '\0';
    if (host_normalise(raw, out) < 0)
        out[0] = '\0';
}

static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length, gnutls_pcert_st **pcert,
                    unsigned int *pcert_length, gnutls_privkey_t *privkey)
{
    struct upstream_loop *l = upstream_loop_self();
    const struct cert_entry *e;
    char name[HOST_MAX + 1];
    struct cert_set *set;

    (void)req_ca_rdn;
    (void)nreqs;
    (void)pk_algos;
    (void)pk_algos_length;
    if (!l)
        return -1;
    set = router_current_certs(upstream_loop_router(l));
    sni_name(session, name);
    e = set ? find(set, name) : NULL;
    if (!e || !clients_hold_certs(gnutls_transport_get_int(session), set)) {
        tls_cert_set_unref(set);
        return -1;   /* no certificate: the handshake fails */
    }
    *pcert = (gnutls_pcert_st *)e->pcerts;
    *pcert_length = e->npcerts;
    *privkey = e->key;
    return 0;
}

gnutls_certificate_retrieve_function2 *tls_cert_callback(void)
{
    return retrieve;
}
