/*
 * banned.h -- libc calls that have no place in this code base.
 *
 * Each has a bounded or safer replacement (snprintf, memcpy with an explicit
 * length, strtoull with end-pointer checks, gmtime_r). Using one is a
 * compile error.
 */
#ifndef WV_BANNED_H
#define WV_BANNED_H

#define WV__BANNED(func) sorry_##func##_is_banned

#undef strcpy
#define strcpy(x, y) WV__BANNED(strcpy)
#undef strcat
#define strcat(x, y) WV__BANNED(strcat)
#undef strncpy
#define strncpy(x, y, n) WV__BANNED(strncpy)
#undef sprintf
#define sprintf(...) WV__BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) WV__BANNED(vsprintf)
#undef strtok
#define strtok(x, y) WV__BANNED(strtok)
#undef atoi
#define atoi(x) WV__BANNED(atoi)
#undef gmtime
#define gmtime(x) WV__BANNED(gmtime)
#undef localtime
#define localtime(x) WV__BANNED(localtime)

#endif
