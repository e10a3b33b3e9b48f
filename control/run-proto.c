/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * control/run-proto: encoding and decoding of the run protocol's frames
 * (see run-proto.h), shared by the API's side and the CLI's.
 */
#include "control/run-proto.h"

void run_frame_add(struct strbuf *sb, uint8_t type, const void *data, size_t len)
{
    uint8_t head[RUN_FRAME_HEADER] = { type, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                                       (uint8_t)len };

    strbuf_add(sb, head, sizeof(head));
    if (len)
        strbuf_add(sb, data, len);
}

int run_frame_next(const char *buf, size_t len, uint8_t *ret_type, const char **ret_payload, size_t *ret_len)
{
    const uint8_t *h = (const uint8_t *)buf;
    uint32_t n;

    if (len < RUN_FRAME_HEADER)
        return 0;
    n = (uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4];
    if (n > RUN_FRAME_MAX)
        return -1;
    if (len - RUN_FRAME_HEADER < n)
        return 0;
    *ret_type = h[0];
    *ret_payload = buf + RUN_FRAME_HEADER;
    *ret_len = n;
    return 1;
}
