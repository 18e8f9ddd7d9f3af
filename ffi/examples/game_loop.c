/*
 * game_loop.c: client/examples/game_loop.rs's frame loop in C, over the C
 * API. A 60 fps loop downloads an asset set through one PhPool polled
 * inline (no worker thread): each frame calls ph_pool_poll() once (timed),
 * takes the completions, checks each one's status and size, runs a small
 * fake update/render workload, and sleeps the rest of its 16.667 ms.
 *
 *   game_loop [--budget-ms MS] [--connections N] ASSETS
 *
 * ASSETS is a file with one asset per line: "STATUS SIZE URL" (the status
 * and decoded body size expected; SIZE -1: any). ffi/examples/
 * game_loop_bench.rs writes it, serves the assets from nginx and runs this
 * program beside the same loop in Rust. The last line printed is
 *
 *   frames=N frame_max_ms=X frame_p99_ms=X poll_max_us=X poll_p99_us=X mb_per_s=X result=Success requests=N failed=K
 *
 * with game_loop.rs's meanings: frame time is the work before the sleep;
 * mb_per_s is body bytes (decoded, 10^6) per second from the first submit
 * to the frame whose poll returned the last completion; failed counts the
 * requests that did not deliver a 200 (expected ones included: a 404);
 * result=Success when every asset came as expected. Exit status 0 only
 * then.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pollhttp.h"

#define FRAME_NS 16666667LL
#define MAX_FRAMES (60 * 600) /* ten minutes at most */
#define MAX_ASSETS 1024

struct asset {
    int status;
    long long size;
    char url[512];
    PhId id;
    int done;
};

static struct asset assets[MAX_ASSETS];
static double frame_ms[MAX_FRAMES], poll_us[MAX_FRAMES];

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double p99(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    int i = (int)((double)n * 0.99);
    return v[i < n ? i : n - 1];
}

static double max_of(const double *v, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* The game's own work in a frame (the same in game_loop_bench.rs). */
static unsigned fake_work(unsigned seed) {
    static unsigned scene[16384];
    for (int i = 0; i < 16384; i++) {
        seed = seed * 1664525u + 1013904223u;
        scene[i] ^= seed;
    }
    return scene[seed % 16384];
}

int main(int argc, char **argv) {
    double budget_ms = 2.0;
    int connections = 6;
    const char *list = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--budget-ms") == 0 && i + 1 < argc) {
            budget_ms = atof(argv[++i]);
        } else if (strcmp(argv[i], "--connections") == 0 && i + 1 < argc) {
            connections = atoi(argv[++i]);
        } else {
            list = argv[i];
        }
    }
    FILE *f = list ? fopen(list, "r") : NULL;
    if (f == NULL) {
        fprintf(stderr, "usage: game_loop [--budget-ms MS] [--connections N] ASSETS\n");
        return 2;
    }
    int n = 0;
    while (n < MAX_ASSETS &&
           fscanf(f, "%d %lld %511s", &assets[n].status, &assets[n].size, assets[n].url) == 3) {
        n++;
    }
    fclose(f);

    PhPool *pool;
    PhRequest *req;
    if (ph_pool_new(&pool) != PH_OK ||
        ph_pool_set_poll_budget(pool, 4u << 20, (int64_t)(budget_ms * 1000.0)) != PH_OK ||
        ph_pool_set_max_connections(pool, 64, (size_t)connections) != PH_OK ||
        ph_request_new("GET", "http://127.0.0.1/", &req) != PH_OK) {
        fprintf(stderr, "cannot make the pool\n");
        return 1;
    }
    long long start = now_ns();
    for (int i = 0; i < n; i++) {
        PhCode rc = ph_request_set_url(req, assets[i].url);
        if (rc == PH_OK) rc = ph_pool_submit(pool, req, &assets[i].id);
        if (rc != PH_OK) {
            fprintf(stderr, "%s: %s\n", assets[i].url, ph_pool_last_error(pool));
            return 1;
        }
    }
    ph_request_free(req);

    int frames = 0, done = 0, failed = 0;
    const char *result = "Success";
    unsigned long long bytes = 0;
    long long end = 0;
    unsigned sink = 0;
    while (done < n && frames < MAX_FRAMES) {
        long long frame_start = now_ns();
        ph_pool_poll(pool, NULL);
        long long polled = now_ns();
        PhId id;
        while (ph_pool_next_completion(pool, &id) == PH_OK) {
            int r = -1, status = 0;
            const uint8_t *body;
            size_t len = 0;
            ph_completion_result(pool, id, &r);
            ph_completion_status(pool, id, &status);
            ph_completion_body(pool, id, &body, &len);
            for (int i = 0; i < n; i++) {
                if (assets[i].id != id) continue;
                assets[i].done = 1;
                if (r != PH_RESULT_SUCCESS && strcmp(result, "Success") == 0) {
                    result = ph_result_name(r);
                } else if ((status != assets[i].status ||
                            (assets[i].size >= 0 && (long long)len != assets[i].size)) &&
                           strcmp(result, "Success") == 0) {
                    result = "Mismatch";
                }
            }
            failed += status != 200;
            bytes += len;
            ph_completion_free(pool, id);
            done++;
        }
        if (done == n) end = now_ns();
        sink += fake_work(sink + (unsigned)frames);
        long long work_end = now_ns();
        poll_us[frames] = (double)(polled - frame_start) / 1e3;
        frame_ms[frames] = (double)(work_end - frame_start) / 1e6;
        frames++;
        long long left = frame_start + FRAME_NS - now_ns();
        if (left > 0 && done < n) {
            struct timespec ts = {(time_t)(left / 1000000000LL), (long)(left % 1000000000LL)};
            nanosleep(&ts, NULL);
        }
    }
    ph_pool_free(pool);
    if (done < n) {
        result = "Timeout";
        end = now_ns();
    }
    double secs = (double)(end - start) / 1e9;
    double fmax = max_of(frame_ms, frames), pmax = max_of(poll_us, frames);
    double f99 = p99(frame_ms, frames), q99 = p99(poll_us, frames);
    printf("sink=%u\n", sink & 1);
    printf("frames=%d frame_max_ms=%.2f frame_p99_ms=%.2f poll_max_us=%.0f poll_p99_us=%.0f "
           "mb_per_s=%.1f result=%s requests=%d failed=%d\n",
           frames, fmax, f99, pmax, q99, (double)bytes / 1e6 / secs, result, n, failed);
    return strcmp(result, "Success") == 0 ? 0 : 1;
}
