/*
 * store_fault.c -- the store faults tests inject (wv__store_fault,
 * wv__store_fail_after), compiled only into builds with WV_FAULT_INJECTION
 * (those that build the tests); the wrappers in store.c ask it, through
 * wv__sfault_due, what to simulate on each call.
 *
 * Fault state is global (tests arm it, then run repository code, which
 * may call the store from its pack-writer thread) and guarded by one
 * mutex. A fault is "due" once its countdown reaches zero and fires at the
 * first call of a kind it applies to; a fired FSYNC fault on an unsynced
 * put leaves one more failure behind, for the next sync barrier.
 */
#include "store.h"

#include <pthread.h>

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static long g_fail_after;
static int g_fail_kind, g_fail_code, g_fail_errno;
static bool g_due;
static bool g_sync_fails; /* an FSYNC fault hit an unsynced put */
static char g_sync_key[160];

void wv__store_fault(long n, int kind, int code, int errnum)
{
    pthread_mutex_lock(&g_mu);
    g_fail_after = n > 0 ? n : 0;
    g_fail_kind = kind;
    g_fail_code = code;
    g_fail_errno = errnum;
    g_due = false;
    g_sync_fails = false;
    pthread_mutex_unlock(&g_mu);
}

void wv__store_fail_after(long n, int code, int errnum)
{
    wv__store_fault(n, WV__SFAULT_FAIL, code, errnum);
}

bool wv__store_fault_pending(void)
{
    pthread_mutex_lock(&g_mu);
    bool p = g_fail_after > 0 || g_due;
    pthread_mutex_unlock(&g_mu);
    return p;
}

/* Count this call; the kind of fault to simulate on it, or -1. */
int wv__sfault_due(int op)
{
    int kind = -1;
    pthread_mutex_lock(&g_mu);
    if (g_fail_after > 0 && --g_fail_after == 0)
        g_due = true;
    if (g_due) {
        bool applies = g_fail_kind == WV__SFAULT_FAIL ||
                       (g_fail_kind == WV__SFAULT_SHORT_WRITE &&
                        op == WV__SOP_PUT) ||
                       (g_fail_kind == WV__SFAULT_FSYNC &&
                        (op == WV__SOP_PUT || op == WV__SOP_SYNC)) ||
                       (g_fail_kind == WV__SFAULT_BITFLIP &&
                        op == WV__SOP_GET);
        if (applies) {
            kind = g_fail_kind;
            g_due = false;
        }
    }
    pthread_mutex_unlock(&g_mu);
    return kind;
}

/* Read without the lock, as the wrappers always did: a test arms the fault
 * before the calls it hits. */
void wv__sfault_code(int *code, int *errnum)
{
    *code = g_fail_code;
    *errnum = g_fail_errno;
}

void wv__sfault_sync_note(const char *key)
{
    pthread_mutex_lock(&g_mu);
    g_sync_fails = true;
    snprintf(g_sync_key, sizeof g_sync_key, "%s", key);
    pthread_mutex_unlock(&g_mu);
}

bool wv__sfault_sync_take(char *key, size_t cap)
{
    pthread_mutex_lock(&g_mu);
    bool fails = g_sync_fails;
    if (fails)
        snprintf(key, cap, "%s", g_sync_key);
    g_sync_fails = false;
    pthread_mutex_unlock(&g_mu);
    return fails;
}
