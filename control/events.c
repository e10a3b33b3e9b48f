/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/events: the append-only audit log (see events.h). Each event is
 * one write(2) of one line to a file opened O_APPEND, so lines from
 * concurrent writers never interleave; a line that does not parse (a
 * write cut short by a crash) is skipped when reading.
 */
#include "control/events.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/fileio.h"
#include "common/jsonstore.h"
#include "common/log.h"
#include "common/strbuf.h"
#include "common/xalloc.h"

/* Reading stops at this much of the file's end: the last events are what a user asks for. */
#define EVENTS_READ_MAX (4u << 20)

void events_record(struct server *s, const char *user, const char *app, const char *action, const char *fmt, ...)
{
    _cleanup_free_ char *path = model_path(&s->model, "events.log");
    _cleanup_strbuf_ struct strbuf desc = STRBUF_INIT;
    _cleanup_json_ json_t *ev = NULL;
    _cleanup_free_ char *line = NULL;
    char when[MODEL_TIME_LEN + 1];
    va_list ap;
    int fd;

    va_start(ap, fmt);
    strbuf_vaddf(&desc, fmt, ap);
    va_end(ap);
    model_time_format(time(NULL), when);
    ev = json_pack("{s:s, s:s, s:s?, s:s, s:s}", "time", when, "user", user ? user : "berth", "app", app,
                   "action", action, "description", desc.buf);
    line = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    if (!line)
        return;
    fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        log_warn("events: open '%s': %s", path, strerror(errno));
        return;
    }
    {
        size_t len = strlen(line);

        line[len] = '\n';
        if (write(fd, line, len + 1) != (ssize_t)(len + 1))
            log_warn("events: writing '%s': %s", path, strerror(errno));
        line[len] = '\0';
    }
    (void)close(fd);
}

/*
 * When the app of that name that `tenant` owns now was made, or "" when it
 * owns none, looked up once per name in `seen`. An event older than the
 * app is of an app of the same name destroyed before (perhaps another
 * tenant's): not this tenant's to read.
 */
static const char *owned_since(struct server *s, json_t *seen, const char *app, const char *tenant)
{
    json_t *known = json_object_get(seen, app);
    _cleanup_json_ json_t *record = NULL;
    const char *owner, *created = NULL;

    if (known)
        return json_string_value(known);
    if (model_app_load(&s->model, app, &record, NULL) == 0 && (owner = json_get_str(record, "tenant")) &&
        strcmp(owner, tenant) == 0)
        created = json_get_str(record, "created_at");
    json_object_set_new(seen, app, json_string(created ? created : ""));
    return json_string_value(json_object_get(seen, app));
}

static bool visible(struct server *s, json_t *seen, const json_t *ev, const char *tenant, const char *app)
{
    const char *ev_app = json_get_str(ev, "app"), *since, *when;

    if (app && (!ev_app || strcmp(ev_app, app) != 0))
        return false;
    if (strcmp(tenant, MODEL_ADMIN_TENANT) == 0)
        return true;
    /* Another tenant's app, one that is gone, or an earlier one of the name: not this tenant's to read. */
    if (!ev_app || !*(since = owned_since(s, seen, ev_app, tenant)))
        return false;
    when = json_get_str(ev, "time");
    return when && strcmp(when, since) >= 0;
}

int events_read(struct server *s, const char *tenant, const char *app, size_t max, json_t **ret,
                struct berth_error **err)
{
    _cleanup_free_ char *path = model_path(&s->model, "events.log");
    _cleanup_strbuf_ struct strbuf text = STRBUF_INIT;
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
    _cleanup_json_ json_t *seen = json_object();
    json_t *out = json_array();
    off_t size, from;
    char *p, *nl;

    *ret = out;
    if (fd < 0)
        return errno == ENOENT ? 0 : berth_error_make(err, errno, "open '%s'", path);
    size = lseek(fd, 0, SEEK_END);
    from = size > (off_t)EVENTS_READ_MAX ? size - (off_t)EVENTS_READ_MAX : 0;
    strbuf_grow(&text, (size_t)(size - from) + 1);
    if (pread(fd, text.buf, (size_t)(size - from), from) != size - from)
        return berth_error_make(err, errno ? errno : EIO, "read '%s'", path);
    text.len = (size_t)(size - from);
    text.buf[text.len] = '\0';
    p = text.buf;
    if (from > 0 && (nl = strchr(p, '\n')))
        p = nl + 1;   /* the first line read from the middle of the file is partial */
    for (; *p; p = nl + 1) {
        json_t *ev;

        nl = strchr(p, '\n');
        if (!nl)
            break;
        ev = json_loadb(p, (size_t)(nl - p), 0, NULL);
        if (ev && json_is_object(ev) && visible(s, seen, ev, tenant, app))
            json_array_append_new(out, ev);
        else
            json_decref(ev);
    }
    while (json_array_size(out) > max)
        json_array_remove(out, 0);
    return 0;
}
