/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/certs: the TLS certificate store behind `berth certs:add`, and
 * what the router's HTTPS listener is given (docs/API.md). GnuTLS checks an
 * uploaded pair: the chain parses, the key is not encrypted and parses,
 * one certificate (the leaf) is the key's, and every other one is an
 * issuer up the leaf's chain (given in any order, stored leaf first), RSA
 * keys have at least 2048 bits, the leaf has not expired. The leaf's
 * names are its DNS subject alternative names, else its common name.
 *
 * Layout under berth's home:
 *
 *   <home>/certs/default.pem, default.key   self-signed "berth default", made at first use
 *   <home>/certs/<app>/<id>.pem             the chain as GnuTLS re-exported it, leaf first (0600)
 *   <home>/certs/<app>/<id>.key             the key, unencrypted PKCS #8 PEM (0600)
 *
 * and in app.json: "certs": [{"id", "names", "not_before", "not_after",
 * "issuer", "subject", "self_signed", "trusted", "source": "manual",
 * "created_at"}]. The id is the first 16 hex digits of the SHA-256 of the
 * leaf's DER, so the same certificate is the same id. Files are written
 * before the record and removed after it, so a record always has its files.
 *
 * Which certificate serves which name (Heroku's model: certificates belong
 * to an app and are picked by SNI): a certificate is accepted when it
 * serves at least one of the app's names (its domains or its default name);
 * it then serves exactly those of the app's names it is valid for, plus its
 * own names that one of the app's wildcard domains routes. A certificate
 * never serves a name of another app, and the names it covers that the app
 * does not hold are reported as unused (`berth domains:add` puts them to
 * use). Names without a certificate get the default one.
 *
 * ACME later: a renewer writes the same two files and a record with
 * "source": "acme" (and, say, "renew_after"), the router answers
 * /.well-known/acme-challenge/ from a directory beside these; nothing here
 * changes, since publishing reads every record whatever its source, and
 * certs:remove of an ACME certificate would turn the renewal off.
 */
#ifndef BERTH_CONTROL_CERTS_H
#define BERTH_CONTROL_CERTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "common/error.h"
#include "control/model.h"
#include "router/router.h"

/* Certificates one app may hold, certificates in one chain, names read from one leaf. */
#define CERTS_PER_APP_MAX 20
#define CERTS_CHAIN_MAX 10
#define CERTS_NAMES_MAX 250
#define CERTS_ID_LEN 16
/* The common name of the self-signed default certificate. */
#define CERTS_DEFAULT_CN "berth default"

/* An uploaded pair, checked (certs_parse). */
struct cert_info {
    char id[CERTS_ID_LEN + 1];
    json_t *names;              /* normalised DNS names (array of strings) */
    time_t not_before, not_after;
    char *issuer, *subject;     /* RFC 4514 DNs */
    bool self_signed;
    bool trusted;               /* chains to the host's trust store (informative) */
    char *cert_pem;             /* the chain, leaf first, as GnuTLS exported it */
    char *key_pem;              /* unencrypted PKCS #8 */
};

/*
 * Checks a chain and its key (PEM text, NUL-terminated) as described above
 * and fills *ret (release it with cert_info_release()). -EINVAL with a
 * message that says what is wrong (the key is encrypted, does not match,
 * the certificate expired on ..., ...).
 */
int certs_parse(const char *chain_pem, const char *key_pem, struct cert_info *ret, struct berth_error **err);
void cert_info_release(struct cert_info *ci);
/* The record app.json keeps (new reference). */
json_t *cert_info_record(const struct cert_info *ci);

/*
 * Which names a certificate with `cert_names` serves for an app whose names
 * (domains and default name) are `app_names` (see above): appended to
 * `served` (each once); the certificate's names that serve nothing are
 * appended to `unused` (may be NULL).
 */
void certs_match(const json_t *cert_names, const json_t *app_names, json_t *served, json_t *unused);

/* Writes <home>/certs/<app>/<id>.pem and .key (0600, atomically). */
int certs_store(const struct model *m, const char *app, const struct cert_info *ci, struct berth_error **err);
/* Removes them (missing files are fine). */
int certs_remove_files(const struct model *m, const char *app, const char *id, struct berth_error **err);

/*
 * Makes sure <home>/certs/default.pem and .key hold a matching self-signed
 * pair (ECDSA P-256, CN "berth default", valid 10 years), generating it when
 * missing or broken. Returns 1 when it generated one, 0 when it was there.
 * Thread-safe.
 */
int certs_default_ensure(const struct model *m, struct berth_error **err);

/* One certificate as the router is given it. */
struct certs_entry {
    char *app;                  /* NULL for the default certificate */
    char *id;                   /* "default" for it */
    char **names;               /* the names it serves, NULL-terminated; { "" } for the default */
    size_t n_names;
    char *cert_pem;             /* chain, leaf first */
    char *key_pem;
    time_t not_after;
};

struct certs_list {
    struct certs_entry *entries;    /* entries[0] is the default certificate */
    size_t n;
};

/*
 * Every certificate to publish: the default one first (made if needed),
 * then each app's certificates with the names they serve (see above; a
 * certificate that serves nothing now is left out). No name appears twice:
 * when two certificates serve one, the app's own name beats a name below
 * its wildcard, then a certificate that has not expired, then the one that
 * expires last. `berth_domain` gives the apps' default names. A record
 * whose files are gone (a removal in progress) is skipped. Reads the
 * records without the records lock (each file is replaced atomically).
 * Release *ret with certs_list_release().
 */
int certs_load_all(const struct model *m, const char *berth_domain, struct certs_list *ret,
                   struct berth_error **err);
void certs_list_release(struct certs_list *l);
/*
 * The list as router_set_certs() takes it: one router_cert per name (the
 * default one with name ""), pointing into `l` (valid while it lives).
 * *ret is malloc'ed (free() it); *ret_n its length.
 */
void certs_list_router(const struct certs_list *l, struct router_cert **ret, size_t *ret_n);

#endif
