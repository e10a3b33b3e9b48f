/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The profile's program made small, at build time (seccomp-internal.h).
 * libseccomp's program tests each syscall number on its own: 546
 * instructions for berth's profile, and loading it cost ~160 us of every
 * container start here (the kernel converts each instruction to eBPF and
 * JITs it, in several passes), against ~23 us for a one-instruction
 * program. Most syscall numbers sit in runs that share an action (on
 * x86_64, 70 runs cover 0-1023), so this program is a binary search over
 * those runs, each leaf a jump to one shared return per action, plus a
 * small block for each of the four syscalls whose arguments the profile
 * reads (clone, socket, personality, ioctl), written from the same
 * constants as libseccomp's rules (seccomp.c): 99 instructions, loaded in
 * ~40-65 us. On x86_64 only (its layout has the x32 bit); other
 * architectures keep libseccomp's program.
 *
 * The runs are not written down: they are read off libseccomp's program by
 * running it (seccomp_program_run) for every number, so the allow and deny
 * lists stay in one place. The result is then compared with libseccomp's
 * program (seccomp_program_differ) and refused if they disagree anywhere:
 * a rule added to seccomp.c that the blocks here do not know fails the
 * build instead of loosening or tightening the profile unseen.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <linux/audit.h>

#include "common/cleanup.h"
#include "common/xalloc.h"
#include "runner/seccomp-internal.h"
#include "common/banned.h"

#define MAX_PROGRAM 4096
/* The numbers whose runs are read off the reference; above, up to the x32 bit, one action. */
#define TABLE_NRS 1024u
#define X32_SYSCALL_BIT 0x40000000u

#define ARG_LO(i) ((uint32_t)(offsetof(struct seccomp_data, args) + 8 * (i)))
#define ARG_HI(i) (ARG_LO(i) + 4)

/* ---- running a program ---- */

int seccomp_program_run(const struct seccomp_program *p, const struct seccomp_data *d,
                        uint32_t *ret_action, bool *ret_args_read)
{
    uint32_t a = 0;
    bool args_read = false;

    for (unsigned pc = 0; pc < p->len; pc++) {
        const struct sock_filter *f = &p->filter[pc];
        bool taken;

        switch (f->code) {
        case BPF_LD | BPF_W | BPF_ABS:
            if (f->k % 4 != 0 || f->k >= sizeof(*d))
                return -EINVAL;
            memcpy(&a, (const char *)d + f->k, 4);
            args_read = args_read || f->k >= offsetof(struct seccomp_data, args);
            continue;
        case BPF_ALU | BPF_AND | BPF_K:
            a &= f->k;
            continue;
        case BPF_JMP | BPF_JA:
            pc += f->k;
            continue;
        case BPF_RET | BPF_K:
            *ret_action = f->k;
            *ret_args_read = args_read;
            return 0;
        case BPF_JMP | BPF_JEQ | BPF_K:
            taken = a == f->k;
            break;
        case BPF_JMP | BPF_JGT | BPF_K:
            taken = a > f->k;
            break;
        case BPF_JMP | BPF_JGE | BPF_K:
            taken = a >= f->k;
            break;
        case BPF_JMP | BPF_JSET | BPF_K:
            taken = (a & f->k) != 0;
            break;
        default:
            return -EINVAL;
        }
        pc += taken ? f->jt : f->jf;
    }
    return -EINVAL;
}

/* ---- comparing two programs ---- */

struct samples {
    uint32_t *v;
    size_t n, cap;
};

static void samples_add(struct samples *s, uint32_t v)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == v)
            return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = v;
}

/*
 * The constants a program compares an argument with (or ANDs one with),
 * one either side and their complements. Which value the accumulator may
 * hold comes from the loads before each instruction: jumps only go
 * forward, so one pass in order sees every way into an instruction.
 */
static void samples_from(struct samples *s, const struct seccomp_program *p)
{
    _cleanup_free_ bool *arg_in = xcalloc(p->len + 1, sizeof(*arg_in));

    for (unsigned i = 0; i < p->len; i++) {
        const struct sock_filter *f = &p->filter[i];
        uint16_t cls = BPF_CLASS(f->code);
        bool arg = arg_in[i];
        unsigned next[2] = { i + 1, i + 1 };

        if (cls == BPF_LD)
            arg = f->k >= offsetof(struct seccomp_data, args);
        if (arg && (cls == BPF_ALU || (cls == BPF_JMP && BPF_OP(f->code) != BPF_JA))) {
            samples_add(s, f->k);
            samples_add(s, f->k - 1);
            samples_add(s, f->k + 1);
            samples_add(s, ~f->k);
        }
        if (cls == BPF_RET)
            continue;
        if (cls == BPF_JMP && BPF_OP(f->code) == BPF_JA) {
            next[0] = next[1] = i + 1 + f->k;
        } else if (cls == BPF_JMP) {
            next[0] = i + 1 + f->jt;
            next[1] = i + 1 + f->jf;
        }
        for (int j = 0; j < 2; j++)
            if (next[j] < p->len)
                arg_in[next[j]] = arg_in[next[j]] || arg;
    }
}

struct verdict {
    uint32_t action;
    bool args_read;
};

static int differ_at(const struct seccomp_program *a, const struct seccomp_program *b,
                     const struct seccomp_data *d, bool *ret_args_read, struct berth_error **err)
{
    struct verdict va, vb;

    if (seccomp_program_run(a, d, &va.action, &va.args_read) < 0 ||
        seccomp_program_run(b, d, &vb.action, &vb.args_read) < 0)
        return berth_error_plain(err, EINVAL, "a seccomp program does not run (syscall %u)", d->nr);
    if (va.action != vb.action)
        return berth_error_plain(err, EINVAL,
                                 "the programs differ on syscall %u (arch %#x, args %#llx %#llx): "
                                 "%#x against %#x", d->nr, d->arch,
                                 (unsigned long long)d->args[0], (unsigned long long)d->args[1],
                                 va.action, vb.action);
    if (ret_args_read)
        *ret_args_read = va.args_read || vb.args_read;
    return 0;
}

/* Each argument alone over hi x lo, then the first two together over pairs x pairs. */
static int differ_in_args(const struct seccomp_program *a, const struct seccomp_program *b,
                          struct seccomp_data *d, const struct samples *hi, const struct samples *lo,
                          const struct samples *pairs, struct berth_error **err)
{
    int r;

    for (int i = 0; i < 6; i++) {
        for (size_t h = 0; h < hi->n; h++) {
            for (size_t l = 0; l < lo->n; l++) {
                memset(d->args, 0, sizeof(d->args));
                d->args[i] = (uint64_t)hi->v[h] << 32 | lo->v[l];
                if ((r = differ_at(a, b, d, NULL, err)) < 0)
                    return r;
            }
        }
    }
    for (size_t x = 0; x < pairs->n; x++) {
        for (size_t y = 0; y < pairs->n; y++) {
            memset(d->args, 0, sizeof(d->args));
            d->args[0] = pairs->v[x];
            d->args[1] = pairs->v[y];
            if ((r = differ_at(a, b, d, NULL, err)) < 0)
                return r;
        }
    }
    memset(d->args, 0, sizeof(d->args));
    return 0;
}

int seccomp_program_differ(const struct seccomp_program *a, const struct seccomp_program *b,
                           struct berth_error **err)
{
    static const uint32_t arches[] = { AUDIT_ARCH_X86_64, AUDIT_ARCH_I386, AUDIT_ARCH_AARCH64, 0 };
    static const uint32_t edges[] = { 0x3fffffff, X32_SYSCALL_BIT, X32_SYSCALL_BIT + 1,
                                      X32_SYSCALL_BIT + 59, 0x7fffffff, 0x80000000,
                                      0xfffffffe, 0xffffffff };
    struct samples lo = { 0 }, hi = { 0 }, nrs = { 0 }, pairs = { 0 };
    struct seccomp_data d = { 0 };
    int r = 0;

    samples_from(&pairs, a);
    samples_from(&pairs, b);
    for (size_t i = 0; i < pairs.n; i++)
        samples_add(&lo, pairs.v[i]);
    for (uint32_t v = 0; v <= 64; v++)
        samples_add(&lo, v);
    for (int bit = 0; bit < 32; bit++)
        samples_add(&lo, 1u << bit);
    samples_add(&lo, 0xffffffff);
    samples_add(&hi, 0);
    samples_add(&hi, 1);
    samples_add(&hi, 0xffffffff);
    samples_add(&hi, 0x80000000);
    for (uint32_t v = 0; v < 2048; v++)
        samples_add(&nrs, v);
    for (size_t i = 0; i < sizeof(edges) / sizeof(*edges); i++)
        samples_add(&nrs, edges[i]);
    for (size_t i = 0; i < lo.n; i++)
        samples_add(&nrs, lo.v[i]);
    for (size_t ai = 0; ai < sizeof(arches) / sizeof(*arches) && r == 0; ai++) {
        d.arch = arches[ai];
        for (size_t i = 0; i < nrs.n && r == 0; i++) {
            bool args_read = false;

            d.nr = (int)nrs.v[i];
            r = differ_at(a, b, &d, &args_read, err);
            if (r == 0 && args_read)
                r = differ_in_args(a, b, &d, &hi, &lo, &pairs, err);
        }
    }
    free(lo.v);
    free(hi.v);
    free(nrs.v);
    free(pairs.v);
    return r;
}

/* ---- building the compact program ---- */

/*
 * A jump target not known yet: a shared return (by action) or an argument
 * block (by syscall number), patched into jt or jf once everything is laid
 * out. Every jump is forward, as classic BPF requires.
 */
enum target_kind { TO_NEXT, TO_RETURN, TO_BLOCK, TO_NODE };

struct target {
    enum target_kind kind;
    uint32_t value;             /* the action, the syscall number or the node's index */
};

struct fixup {
    unsigned at;
    bool jt;
    struct target to;
};

struct builder {
    struct sock_filter prog[MAX_PROGRAM];
    unsigned len;
    struct fixup fix[MAX_PROGRAM * 2];
    unsigned n_fix;
    uint32_t actions[16];       /* the shared returns, in order */
    unsigned n_actions;
    unsigned block_at[4];       /* where each argument block starts */
    int block_nr[4];
    unsigned n_blocks;
};

struct run {
    uint32_t first;
    bool by_args;               /* the decision reads the arguments: the syscall's block */
    uint32_t action;
};

static unsigned emit(struct builder *b, uint16_t code, uint32_t k)
{
    if (b->len == MAX_PROGRAM)
        return b->len - 1;      /* the size check at the end refuses it */
    b->prog[b->len] = (struct sock_filter){ .code = code, .k = k };
    return b->len++;
}

static void jump(struct builder *b, unsigned at, bool jt, struct target to)
{
    if (to.kind == TO_NEXT || b->n_fix == sizeof(b->fix) / sizeof(*b->fix))
        return;
    b->fix[b->n_fix++] = (struct fixup){ .at = at, .jt = jt, .to = to };
}

static void note_action(struct builder *b, uint32_t action)
{
    for (unsigned i = 0; i < b->n_actions; i++)
        if (b->actions[i] == action)
            return;
    if (b->n_actions < sizeof(b->actions) / sizeof(*b->actions))
        b->actions[b->n_actions++] = action;
}

static struct target ret_to(struct builder *b, uint32_t action)
{
    note_action(b, action);
    return (struct target){ TO_RETURN, action };
}

/* A conditional jump on the accumulator: to `yes` when it holds, else to `no`. */
static void cond(struct builder *b, uint16_t op, uint32_t k, struct target yes, struct target no)
{
    unsigned at = emit(b, BPF_JMP | op | BPF_K, k);

    jump(b, at, true, yes);
    jump(b, at, false, no);
}

static struct target leaf(struct builder *b, const struct run *r)
{
    if (r->by_args)
        return (struct target){ TO_BLOCK, r->first };
    return ret_to(b, r->action);
}

/* A binary search over runs[0..n): each node tests "nr >= the first number of the right half". */
static struct target search(struct builder *b, const struct run *runs, size_t n)
{
    unsigned at;
    size_t half = n / 2;

    if (n == 1)
        return leaf(b, &runs[0]);
    at = emit(b, BPF_JMP | BPF_JGE | BPF_K, runs[half].first);
    /* Preorder: the left half right after the node, the right half after that. */
    jump(b, at, false, search(b, runs, half));
    jump(b, at, true, search(b, runs + half, n - half));
    return (struct target){ TO_NODE, at };
}

/*
 * The four argument blocks, from the constants of libseccomp's rules
 * (seccomp.c). A 64-bit argument is read as its two halves; where the rule
 * compares all 64 bits, a nonzero high half takes the "anything else" way.
 */
static void block_start(struct builder *b, int nr)
{
    b->block_at[b->n_blocks] = b->len;
    b->block_nr[b->n_blocks++] = nr;
}

/*
 * Argument `arg` is one of values[0..n) (all 64 bits compared when `whole`,
 * else the low 32 bits only): to `yes`, else to `no`.
 */
static void one_of(struct builder *b, int arg, bool whole, const unsigned long *values, size_t n,
                   struct target yes, struct target no)
{
    struct target next = { TO_NEXT, 0 };

    if (whole) {
        emit(b, BPF_LD | BPF_W | BPF_ABS, ARG_HI(arg));
        cond(b, BPF_JEQ, 0, next, no);
    }
    emit(b, BPF_LD | BPF_W | BPF_ABS, ARG_LO(arg));
    for (size_t i = 0; i < n; i++)
        cond(b, BPF_JEQ, (uint32_t)values[i], yes, i + 1 < n ? next : no);
}

static void blocks(struct builder *b)
{
    struct target allow = ret_to(b, SECCOMP_RET_ALLOW);
    struct target eperm = ret_to(b, SECCOMP_RET_ERRNO | EPERM);
    struct target eafno = ret_to(b, SECCOMP_RET_ERRNO | EAFNOSUPPORT);

    block_start(b, SYS_clone);
    emit(b, BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
    cond(b, BPF_JSET, (uint32_t)seccomp_clone_ns_mask(), eperm, allow);
    block_start(b, SYS_socket);
    one_of(b, 0, true, seccomp_socket_families, seccomp_n_socket_families, allow, eafno);
    block_start(b, SYS_personality);
    one_of(b, 0, true, seccomp_personality_ok, seccomp_n_personality_ok, allow, eperm);
    block_start(b, SYS_ioctl);
    one_of(b, 1, false, seccomp_ioctl_denied, seccomp_n_ioctl_denied, eperm, allow);
}

static int resolve(struct builder *b, struct berth_error **err)
{
    unsigned returns = b->len;

    for (unsigned i = 0; i < b->n_actions; i++)
        emit(b, BPF_RET | BPF_K, b->actions[i]);
    if (b->len >= MAX_PROGRAM)
        return berth_error_plain(err, E2BIG, "the compact seccomp program is too long");
    for (unsigned i = 0; i < b->n_fix; i++) {
        const struct fixup *f = &b->fix[i];
        unsigned to = 0, off;

        if (f->to.kind == TO_NODE)
            to = f->to.value;
        for (unsigned a = 0; f->to.kind == TO_RETURN && a < b->n_actions; a++)
            if (b->actions[a] == f->to.value)
                to = returns + a;
        for (unsigned k = 0; f->to.kind == TO_BLOCK && k < b->n_blocks; k++)
            if ((uint32_t)b->block_nr[k] == f->to.value)
                to = b->block_at[k];
        if (to <= f->at)
            return berth_error_plain(err, EINVAL, "no place for a jump of the compact seccomp "
                                     "program (instruction %u)", f->at);
        off = to - f->at - 1;
        if (off > 255)
            return berth_error_plain(err, E2BIG, "a jump of the compact seccomp program is too "
                                     "long (instruction %u)", f->at);
        if (f->jt)
            b->prog[f->at].jt = (uint8_t)off;
        else
            b->prog[f->at].jf = (uint8_t)off;
    }
    return 0;
}

/* The reference's runs over 0..TABLE_NRS, and its action above them and for other ABIs. */
static int read_runs(const struct seccomp_program *ref, struct run *runs, size_t *ret_n,
                     uint32_t *ret_foreign, uint32_t *ret_x32, struct berth_error **err)
{
    struct seccomp_data d = { .arch = AUDIT_ARCH_X86_64 };
    size_t n = 0;
    bool args;
    uint32_t act;

    for (uint32_t nr = 0; nr < TABLE_NRS; nr++) {
        d.nr = (int)nr;
        if (seccomp_program_run(ref, &d, &act, &args) < 0)
            return berth_error_plain(err, EINVAL, "libseccomp's program does not run");
        if (args && nr != SYS_clone && nr != SYS_socket && nr != SYS_personality && nr != SYS_ioctl)
            return berth_error_plain(err, EINVAL, "syscall %u reads its arguments in the profile, "
                                     "and the compact program has no block for it", nr);
        if (n > 0 && !args && !runs[n - 1].by_args && runs[n - 1].action == act)
            continue;
        runs[n++] = (struct run){ .first = nr, .by_args = args, .action = act };
    }
    d.arch = 0;
    if (seccomp_program_run(ref, &d, ret_foreign, &args) < 0)
        return berth_error_plain(err, EINVAL, "libseccomp's program does not run");
    d = (struct seccomp_data){ .arch = AUDIT_ARCH_X86_64, .nr = (int)X32_SYSCALL_BIT };
    if (seccomp_program_run(ref, &d, ret_x32, &args) < 0)
        return berth_error_plain(err, EINVAL, "libseccomp's program does not run");
    *ret_n = n;
    return 0;
}

int seccomp_program_compact(const struct seccomp_program *ref, struct seccomp_program *ret,
                            struct berth_error **err)
{
    _cleanup_free_ struct builder *b = xcalloc(1, sizeof(*b));
    struct run runs[TABLE_NRS];
    struct seccomp_program p;
    uint32_t foreign, x32;
    size_t n;
    unsigned at;
    int r;

#ifndef __x86_64__
    /* The layout below is x86_64's (its x32 bit); elsewhere libseccomp's program is kept. */
    *ret = (struct seccomp_program){ .filter = xmalloc(ref->len * sizeof(*ref->filter)), .len = ref->len };
    memcpy(ret->filter, ref->filter, ref->len * sizeof(*ref->filter));
    return 0;
#endif
    if ((r = read_runs(ref, runs, &n, &foreign, &x32, err)) < 0)
        return r;
    /* Another ABI: the reference's bad-arch action. */
    emit(b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    cond(b, BPF_JEQ, AUDIT_ARCH_X86_64, (struct target){ TO_NEXT, 0 }, ret_to(b, foreign));
    emit(b, BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    /*
     * x32 (the number's bit 30) is refused like another ABI, except -1,
     * which libseccomp leaves to the table's top run (the default action).
     */
    at = emit(b, BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT);
    jump(b, at, false, search(b, runs, n));
    jump(b, at, true, (struct target){ TO_NODE, b->len });
    cond(b, BPF_JEQ, 0xffffffff, leaf(b, &runs[n - 1]), ret_to(b, x32));
    blocks(b);
    if ((r = resolve(b, err)) < 0)
        return r;
    p = (struct seccomp_program){ .filter = xmalloc(b->len * sizeof(*b->prog)),
                                  .len = (unsigned short)b->len };
    memcpy(p.filter, b->prog, b->len * sizeof(*b->prog));
    if ((r = seccomp_program_differ(ref, &p, err)) < 0) {
        free(p.filter);
        return berth_error_wrap(err, "the compact seccomp program is not libseccomp's");
    }
    *ret = p;
    return 0;
}
