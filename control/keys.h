/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/keys: tenants' SSH public keys and the berth user's
 * authorized_keys, which sshd (Debian's openssh-server, not a home-made
 * one) reads. The records live in <home>/ssh-keys.json:
 *
 *   {"keys": [{"fingerprint": "SHA256:...", "tenant": "acme", "type": "ssh-ed25519",
 *              "key": "<base64>", "comment": "...", "created_at": "..."}]}
 *
 * One key belongs to one tenant. Every change rewrites authorized_keys
 * atomically (a temporary file renamed over it): lines berth did not write
 * stay as they are, and each key gets
 *
 *   command="'/abs/berth' git-shell --socket '<home>/run/git-shell.sock' 'acme'",restrict <type> <key> berth-tenant=acme
 *
 * so sshd runs `berth git-shell` (git-shell.h) for it and nothing else: no
 * shell, no forwarding, no pty. The file is the berth user's
 * ~/.ssh/authorized_keys, or $BERTH_AUTHORIZED_KEYS when set (tests, or a
 * sshd configured with another AuthorizedKeysFile).
 */
#ifndef BERTH_CONTROL_KEYS_H
#define BERTH_CONTROL_KEYS_H

#include <jansson.h>

#include "common/error.h"
#include "control/server.h"

/* The authorized_keys file berth maintains (malloc'ed). */
char *keys_authorized_keys_path(void);

/*
 * Adds the public key `text` (one "TYPE BASE64 [COMMENT]" line, as in a
 * .pub file) for `tenant`; *ret (may be NULL) is its record. -EINVAL for a
 * line that is no public key, -EEXIST when another tenant holds the key
 * (the tenant itself adding it again is fine: the record is returned).
 */
int keys_add(struct server *s, const char *tenant, const char *text, json_t **ret, struct berth_error **err);
/* The records of `tenant` (NULL: every tenant's), without the key material. */
int keys_list(struct server *s, const char *tenant, json_t **ret, struct berth_error **err);
/* Removes key `fingerprint` of `tenant` (NULL: any tenant's). -ENOENT "no key '...'". */
int keys_remove(struct server *s, const char *tenant, const char *fingerprint, struct berth_error **err);
/* Removes every key of `tenant` (the tenant is being destroyed). */
int keys_drop_tenant(struct server *s, const char *tenant, struct berth_error **err);
/*
 * Writes authorized_keys from the records, each key's forced command naming
 * this binary and `socket_path` (remembered for later rewrites). Does
 * nothing when there are no records and the file holds no berth line.
 */
int keys_render(struct server *s, const char *socket_path, struct berth_error **err);

#endif
