/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Functions berth never calls (git's banned.h): each has a bounded or
 * strbuf-based replacement. Include it last, after
 * the system headers; tests/check-banned.sh also greps the tree for them.
 */
#ifndef BERTH_BANNED_H
#define BERTH_BANNED_H

#define BANNED(func) sorry_##func##_is_a_banned_function

#undef strcpy
#define strcpy(x, y) BANNED(strcpy)
#undef strcat
#define strcat(x, y) BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) BANNED(strncpy)
#undef sprintf
#define sprintf(...) BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) BANNED(vsprintf)
#undef strtok
#define strtok(x, y) BANNED(strtok)

#endif
