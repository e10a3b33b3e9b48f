/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/build-slots: a counting semaphore with a ticket queue (see
 * build-slots.h). Tickets are handed out in arrival order; a waiter may go
 * once a slot is free and every earlier ticket has gone, so builds start in
 * the order their pushes arrived.
 */
#include "control/build-slots.h"

#include <pthread.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonstore.h"
#include "control/model.h"

static struct {
    pthread_mutex_t lock;       /* guards everything below */
    pthread_cond_t changed;
    unsigned running;
    unsigned long next_ticket;  /* the ticket the next caller gets */
    unsigned long serving;      /* the lowest ticket still waiting */
} slots = { .lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER };

static unsigned slot_count(struct server *s)
{
    _cleanup_json_ json_t *settings = NULL;
    const json_t *v = NULL;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (model_settings_load(&s->model, &settings, NULL) == 0)
        v = json_object_get(json_object_get(settings, "builds"), "concurrent");
    if (json_is_integer(v) && json_integer_value(v) > 0 && json_integer_value(v) <= 1024)
        return (unsigned)json_integer_value(v);
    return cpus > 2 ? (unsigned)cpus : 2;
}

void build_slots_acquire(struct server *s, void (*say)(void *cls, unsigned ahead), void *cls)
{
    unsigned max = slot_count(s);
    unsigned long ticket, told = (unsigned long)-1;

    pthread_mutex_lock(&slots.lock);
    ticket = slots.next_ticket++;
    while (ticket != slots.serving || slots.running >= max) {
        /* The pushes in line before this one (the builds running are not counted). */
        unsigned long ahead = ticket - slots.serving;

        if (ahead != told && say) {
            told = ahead;
            pthread_mutex_unlock(&slots.lock);
            say(cls, (unsigned)ahead);
            pthread_mutex_lock(&slots.lock);
            continue;
        }
        pthread_cond_wait(&slots.changed, &slots.lock);
    }
    slots.serving++;
    slots.running++;
    pthread_cond_broadcast(&slots.changed);
    pthread_mutex_unlock(&slots.lock);
}

void build_slots_release(void)
{
    pthread_mutex_lock(&slots.lock);
    slots.running--;
    pthread_cond_broadcast(&slots.changed);
    pthread_mutex_unlock(&slots.lock);
}
