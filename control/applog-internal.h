/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/applog-internal: what applog.c (the writers and the log thread)
 * and applog-read.c (the readers) share: one entry per app's log file.
 */
#ifndef BERTH_CONTROL_APPLOG_INTERNAL_H
#define BERTH_CONTROL_APPLOG_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "control/applog.h"

/* The table of app files: enough buckets for the density goal of 500 apps. */
#define APPLOG_BUCKETS 512

struct applog_file {
    char *app;
    char *path;                   /* <home>/apps/<app>/logs/app.log */
    pthread_mutex_t lock;         /* held across each write, and guards what follows */
    pthread_cond_t grew;          /* broadcast after each write, and by applog_end_follows() */
    int fd;                       /* app.log, O_APPEND; -1 until a line comes */
    uint64_t size;                /* of app.log */
    uint64_t writes;              /* writes so far: followers compare */
    uint64_t rotations;           /* renames of app.log to app.log.1 so far */
    uint64_t forgets;             /* applog_forget() calls so far: the app of the name was destroyed */
    bool warned;                  /* a failure was said on stderr already */
    struct applog_file *next;     /* in its bucket */
};

struct applog {
    char *apps_dir;               /* <home>/apps */
    uint64_t rotate_bytes;
    pthread_mutex_t files_lock;   /* guards the table (entries live until applog_stop()) */
    struct applog_file *files[APPLOG_BUCKETS];
    atomic_bool ending;           /* applog_end_follows() was called */

    int epfd;                     /* the log thread's: every pump's pipe, and wake_fd (data NULL) */
    int wake_fd;                  /* eventfd: the router's queue, pumps to resume, the stop */
    pthread_t thread;
    bool thread_started;
    pthread_mutex_t queue_lock;   /* guards the six below */
    unsigned readers;             /* open applog_readers */
    pthread_cond_t readers_cond;  /* the last reader was freed */
    struct strbuf router_queue;   /* the router's lines, not yet written */
    uint64_t router_dropped;      /* lines dropped while the queue was full */
    struct applog_pump *resume;   /* paused pumps whose consumer caught up */
    bool stopping;
};

/* `ms` from now on CLOCK_MONOTONIC, the clock of every condition variable here. */
void applog_deadline_in(struct timespec *t, int ms);
/* The entry of `app`, made on first use. */
struct applog_file *applog_file_get(struct applog *l, const char *app);
/* Counts readers in and out (applog_end_follows() waits for the last one). */
void applog_reader_count(struct applog *l, int delta);

#endif
