/*
 * A negative control for tests/c_api.rs: this program leaks a request
 * handle on purpose, and the sanitizer and valgrind runs must report it
 * (so their silence on ph_tests.c means something). The handle is made on
 * a thread that has ended by the leak check, so no stale copy of its
 * address on a live stack hides the leak.
 */
#include <pthread.h>
#include <stddef.h>
#include "pollhttp.h"

static void *leak(void *ok) {
    PhRequest *req = NULL;
    *(int *)ok = ph_request_new("GET", "http://127.0.0.1/", &req) == PH_OK;
    req = NULL;
    return NULL;
}

int main(void) {
    pthread_t thread;
    int ok = 0;
    if (pthread_create(&thread, NULL, leak, &ok) != 0 || pthread_join(thread, NULL) != 0) {
        return 1;
    }
    return ok ? 0 : 1;
}
