/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/formation-internal: what formation.c (the slots and converging
 * them) shares with supervisor.c (the exit watch and the restarts) and
 * deploy.c (the instance spec of a release's process).
 */
#ifndef BERTH_CONTROL_FORMATION_INTERNAL_H
#define BERTH_CONTROL_FORMATION_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "control/formation.h"
#include "control/instance.h"

enum dyno_state { DYNO_DOWN, DYNO_STARTING, DYNO_UP, DYNO_CRASHED };

/* One process the formation wants: web.2. Every field is under server.lock. */
struct dyno {
    char *type;
    unsigned number;
    struct instance *in;          /* running now; NULL when down, starting or crashed */
    enum dyno_state state;
    time_t since;                 /* the last state change, wall clock */
    bool starting;                /* a start_slot() is booting its next instance */
    unsigned release;             /* of `in`, or of the last one */
    uint64_t up_at_ms;            /* monotonic: when `in` came up; 0 when not up */
    uint64_t backoff_ms;          /* the last back-off; 0: none yet */
    uint64_t restart_at_ms;       /* monotonic: when a crashed slot starts again */
    unsigned restarts;            /* crashes of this release's process */
    bool has_status;
    int exit_code;                /* the last crash's: exit status, or 128 + signal */
    struct dyno *next;
};

/* What instance_start() needs for one process of a release; release with formation_spec_release(). */
struct formation_spec {
    struct instance_spec spec;
    char *slug_dir;
};
int formation_spec_init(struct server *s, const char *app, const char *tenant, const json_t *record,
                        const json_t *release, const char *type, unsigned number, struct formation_spec *ret,
                        struct berth_error **err);
void formation_spec_release(struct formation_spec *fs);

uint64_t formation_now_ms(void);
const char *formation_state_name(enum dyno_state st);
/* Under server.lock: the slot type.number of rt, or NULL. */
struct dyno *formation_find(struct app_runtime *rt, const char *type, unsigned number);
/* Under server.lock: the new state, said in the app's log as Heroku does. */
void formation_set_state(struct server *s, const char *app, struct dyno *d, enum dyno_state st);
/* `heroku[web.1]: <text>` in the app's log. */
void formation_platform_line(struct server *s, const char *app, const struct dyno *d, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Under server.lock: the back-off of a slot whose process just ended. */
void formation_schedule_restart(struct dyno *d, uint64_t now);
/* Under the app's formation_lock: see formation.c. */
int formation_converge(struct server *s, struct app_runtime *rt, const char *force_type, struct berth_error **err);

/* supervisor.c: starts / stops watching an instance's exit (under server.lock). */
void formation_watch(struct server *s, struct instance *in);
void formation_unwatch(struct server *s, struct instance *in);

#endif
