/*
 * The C API's test cases, run by ffi/tests/c_api.rs against servers it
 * starts on 127.0.0.1 (nginx, httpbin, scripted ones), whose addresses come
 * in environment variables. Built three times (plain, with
 * -fsanitize=address,undefined, and plain under valgrind); every case must
 * pass each time, without a memory error or a leak.
 *
 *   ph_tests            run every case
 *   ph_tests NAME...    run these cases
 *
 * Every loop is bounded in iterations and in time (a case fails when a
 * bound is hit); no case asserts on a duration.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pollhttp.h"

static const char *current = "?";

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: [%s] check failed: %s\n", __FILE__,        \
                    __LINE__, current, #cond);                                 \
            return 1;                                                          \
        }                                                                      \
    } while (0)

#define CHECK_CODE(call, want)                                                 \
    do {                                                                       \
        PhCode got_ = (call);                                                  \
        if (got_ != (want)) {                                                  \
            fprintf(stderr, "%s:%d: [%s] %s returned %d (%s), want %s\n",      \
                    __FILE__, __LINE__, current, #call, (int)got_,             \
                    ph_strerror(got_), #want);                                 \
            return 1;                                                          \
        }                                                                      \
    } while (0)

#define OK(call) CHECK_CODE(call, PH_OK)

/* Run a helper returning 0 on success; fail the case otherwise. */
#define TRY(call)                                                              \
    do {                                                                       \
        if ((call) != 0) {                                                     \
            fprintf(stderr, "%s:%d: [%s] %s failed\n", __FILE__, __LINE__,     \
                    current, #call);                                           \
            return 1;                                                          \
        }                                                                      \
    } while (0)

/* Bounds of every wait for a completion (generous: valgrind is slow). */
#define MAX_MS 60000
#define MAX_ROUNDS 200000

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "[%s] environment variable %s is not set\n", current, name);
        exit(2);
    }
    return v;
}

/* base + path in a static buffer (one at a time). */
static const char *url(const char *base_env, const char *path) {
    static char buf[512];
    snprintf(buf, sizeof buf, "%s%s", env(base_env), path);
    return buf;
}

/* Poll (and wait) until the completion of `id` is ready. */
static int drive(PhPool *pool, PhId id) {
    double start = now_ms();
    for (int i = 0; i < MAX_ROUNDS; i++) {
        int result;
        OK(ph_pool_poll(pool, NULL));
        PhCode c = ph_completion_result(pool, id, &result);
        if (c == PH_OK) {
            return 0;
        }
        CHECK_CODE(c, PH_AGAIN);
        CHECK(now_ms() - start < MAX_MS);
        OK(ph_pool_wait(pool, 50, NULL));
    }
    CHECK(!"too many rounds");
    return 1;
}

/* Submit `req`, drive it to completion, free `req`. */
static int run(PhPool *pool, PhRequest *req, PhId *id) {
    PhCode c = ph_pool_submit(pool, req, id);
    if (c != PH_OK) {
        fprintf(stderr, "[%s] submit: %s (%s)\n", current, ph_strerror(c),
                ph_pool_last_error(pool));
    }
    ph_request_free(req);
    CHECK(c == PH_OK);
    CHECK(*id != 0);
    return drive(pool, *id);
}

static int get(PhPool *pool, const char *u, PhId *id) {
    PhRequest *req;
    OK(ph_request_new("GET", u, &req));
    return run(pool, req, id);
}

static int expect(PhPool *pool, PhId id, int result, int status) {
    int r = -1, s = -1;
    OK(ph_completion_result(pool, id, &r));
    OK(ph_completion_status(pool, id, &s));
    if (r != result || s != status) {
        const char *reason = "";
        ph_completion_reason(pool, id, &reason);
        fprintf(stderr, "[%s] got %s/%d, want %s/%d (%s)\n", current,
                ph_result_name(r), s, ph_result_name(result), status, reason);
        return 1;
    }
    return 0;
}

static int body_is(PhPool *pool, PhId id, const void *want, size_t want_len) {
    const uint8_t *data = NULL;
    size_t len = 0;
    OK(ph_completion_body(pool, id, &data, &len));
    CHECK(data != NULL);
    if (len != want_len || memcmp(data, want, len) != 0) {
        fprintf(stderr, "[%s] body of %zu bytes, want %zu\n", current, len, want_len);
        return 1;
    }
    return 0;
}

static int body_has(PhPool *pool, PhId id, const char *needle) {
    const uint8_t *data = NULL;
    size_t len = 0;
    OK(ph_completion_body(pool, id, &data, &len));
    if (memmem(data, len, needle, strlen(needle)) == NULL) {
        fprintf(stderr, "[%s] body (%zu bytes) lacks \"%s\": %.*s\n", current, len,
                needle, (int)(len > 400 ? 400 : len), (const char *)data);
        return 1;
    }
    return 0;
}

/* nginx's /1k.bin and /1m.bin: xorshift32 from 0x2545F491, low bytes. */
static void pseudo_random(uint8_t *out, size_t len) {
    uint32_t x = 0x2545F491u;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out[i] = (uint8_t)x;
    }
}

static const char HELLO[] = "Hello, world!";
#define ONE_M (1u << 20)

/* ---------------------------------------------------------------- rules */

static int t_version(void) {
    CHECK(ph_version() == PH_VERSION);
    CHECK(PH_VERSION == ((PH_VERSION_MAJOR << 16) | (PH_VERSION_MINOR << 8) | PH_VERSION_PATCH));
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", PH_VERSION_MAJOR, PH_VERSION_MINOR, PH_VERSION_PATCH);
    CHECK(strcmp(ph_version_string(), want) == 0);
    return 0;
}

static int t_strerror(void) {
    int codes[] = {PH_OK, PH_AGAIN, PH_ERR_NULL, PH_ERR_UTF8, PH_ERR_INVALID_ARGUMENT,
                   PH_ERR_INVALID_URL, PH_ERR_INVALID_REQUEST, PH_ERR_UNKNOWN_ID,
                   PH_ERR_TLS, PH_ERR_BODY_FILE, PH_ERR_CONFLICTING_SETTINGS,
                   PH_ERR_SYSTEM, PH_ERR_PANIC, PH_ERR_NOT_FOUND};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        const char *m = ph_strerror(codes[i]);
        CHECK(m != NULL && *m != '\0');
        CHECK(strcmp(m, "unknown error code") != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(m, ph_strerror(codes[j])) != 0);
        }
    }
    CHECK(strcmp(ph_strerror(-1), "unknown error code") == 0);
    CHECK(strcmp(ph_strerror(9999), "unknown error code") == 0);
    CHECK(strcmp(ph_result_name(PH_RESULT_SUCCESS), "Success") == 0);
    CHECK(strcmp(ph_result_name(PH_RESULT_TIMEOUT), "Timeout") == 0);
    CHECK(strcmp(ph_result_name(99), "Unknown") == 0);
    return 0;
}

static int t_null_arguments(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id = 7;
    const uint8_t *data;
    size_t len;
    int i;
    int64_t ms;
    CHECK_CODE(ph_pool_new(NULL), PH_ERR_NULL);
    CHECK_CODE(ph_pool_poll(NULL, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_pool_wait(NULL, 0, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_pool_fd(NULL, &i), PH_ERR_NULL);
    CHECK_CODE(ph_pool_timeout(NULL, &ms), PH_ERR_NULL);
    CHECK_CODE(ph_pool_cancel(NULL, 1), PH_ERR_NULL);
    CHECK_CODE(ph_pool_next_completion(NULL, &id), PH_ERR_NULL);
    CHECK_CODE(ph_pool_set_max_connections(NULL, 1, 1), PH_ERR_NULL);
    CHECK_CODE(ph_wake(NULL), PH_ERR_NULL);
    CHECK(ph_pool_last_error(NULL) == NULL);
    CHECK_CODE(ph_request_new(NULL, "http://127.0.0.1/", &req), PH_ERR_NULL);
    CHECK_CODE(ph_request_new("GET", NULL, &req), PH_ERR_NULL);
    CHECK(req == NULL);
    CHECK_CODE(ph_request_new("GET", "http://127.0.0.1/", NULL), PH_ERR_NULL);
    CHECK_CODE(ph_request_add_header(NULL, "A: b"), PH_ERR_NULL);
    CHECK_CODE(ph_request_set_body(NULL, (const uint8_t *)"x", 1), PH_ERR_NULL);
    CHECK_CODE(ph_completion_result(NULL, 1, &i), PH_ERR_NULL);

    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", "http://127.0.0.1/", &req));
    CHECK_CODE(ph_pool_submit(pool, NULL, &id), PH_ERR_NULL);
    CHECK(id == 0);
    CHECK_CODE(ph_pool_submit(pool, req, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_pool_fd(pool, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_pool_timeout(pool, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_pool_next_completion(pool, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_pool_read_body(pool, 1, NULL, 16, &len), PH_ERR_NULL);
    CHECK_CODE(ph_request_add_header(req, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_request_set_body(req, NULL, 5), PH_ERR_NULL);
    OK(ph_request_set_body(req, NULL, 0)); /* an empty body */
    CHECK_CODE(ph_request_set_body_file(req, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_request_set_download_file(req, NULL), PH_ERR_NULL);
    CHECK_CODE(ph_request_set_tls_root_pem(req, NULL, 10), PH_ERR_NULL);
    CHECK_CODE(ph_request_set_proxy(req, NULL, 8080), PH_ERR_NULL);
    CHECK_CODE(ph_completion_body(pool, 1, NULL, &len), PH_ERR_NULL);
    (void)data;
    ph_request_free(req);
    ph_pool_free(pool);
    return 0;
}

static int t_free_null(void) {
    ph_pool_free(NULL);
    ph_request_free(NULL);
    ph_wake_free(NULL);
    return 0;
}

static int t_invalid_utf8(void) {
    PhRequest *req = NULL;
    CHECK_CODE(ph_request_new("GET", "http://127.0.0.1/\xff\xfe", &req), PH_ERR_UTF8);
    CHECK(req == NULL);
    CHECK_CODE(ph_request_new("G\xc3", "http://127.0.0.1/", &req), PH_ERR_UTF8);
    OK(ph_request_new("GET", "http://127.0.0.1/", &req));
    CHECK_CODE(ph_request_add_header(req, "X-Bad: \xc3\x28"), PH_ERR_UTF8);
    CHECK_CODE(ph_request_set_url(req, "http://\x80/"), PH_ERR_UTF8);
    CHECK_CODE(ph_request_set_body_file(req, "/tmp/\xff"), PH_ERR_UTF8);
    CHECK_CODE(ph_request_set_download_file(req, "/tmp/\xff"), PH_ERR_UTF8);
    CHECK_CODE(ph_request_set_proxy(req, "\xff", 8080), PH_ERR_UTF8);
    ph_request_free(req);
    return 0;
}

static int t_header_crlf(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    OK(ph_request_new("GET", url("PH_NGINX", "/hello.txt"), &req));
    CHECK_CODE(ph_request_add_header(req, "X-A: one\r\nX-Injected: two"), PH_ERR_INVALID_REQUEST);
    CHECK_CODE(ph_request_add_header(req, "X-A: one\nX-Injected: two"), PH_ERR_INVALID_REQUEST);
    CHECK_CODE(ph_request_add_header(req, "X-A: one\r"), PH_ERR_INVALID_REQUEST);
    CHECK_CODE(ph_request_add_header(req, "no colon"), PH_ERR_INVALID_REQUEST);
    CHECK_CODE(ph_request_add_header(req, "Bad Name: x"), PH_ERR_INVALID_REQUEST);
    CHECK_CODE(ph_request_add_header(req, ": empty name"), PH_ERR_INVALID_REQUEST);
    OK(ph_request_add_header(req, "X-Fine:   spaced value  "));
    CHECK_CODE(ph_request_set_method(req, "GE T"), PH_ERR_INVALID_REQUEST);
    CHECK_CODE(ph_request_set_method(req, ""), PH_ERR_INVALID_REQUEST);
    OK(ph_pool_new(&pool));
    TRY(run(pool, req, &id)); /* the bad lines were not added */
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_bad_url(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id = 99;
    OK(ph_pool_new(&pool));
    const char *bad[] = {"not a url", "ftp://127.0.0.1/file", "http://", "/relative/path",
                         "http://exa mple.com/"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        OK(ph_request_new("GET", bad[i], &req));
        CHECK_CODE(ph_pool_submit(pool, req, &id), PH_ERR_INVALID_URL);
        CHECK(id == 0);
        CHECK(strlen(ph_pool_last_error(pool)) > 0);
        ph_request_free(req);
    }
    size_t n = 9;
    OK(ph_pool_in_flight(pool, &n));
    CHECK(n == 0);
    ph_pool_free(pool);
    return 0;
}

static int t_invalid_arguments(void) {
    PhPool *pool;
    PhRequest *req;
    uint8_t buf[4];
    size_t len;
    OK(ph_pool_new(&pool));
    CHECK_CODE(ph_pool_set_max_connections(pool, 0, 1), PH_ERR_INVALID_ARGUMENT);
    CHECK_CODE(ph_pool_set_max_connections(pool, 1, 0), PH_ERR_INVALID_ARGUMENT);
    CHECK_CODE(ph_pool_set_poll_budget(pool, 0, 1000), PH_ERR_INVALID_ARGUMENT);
    CHECK_CODE(ph_pool_set_stream_high_water(pool, 100), PH_ERR_INVALID_ARGUMENT);
    CHECK(strlen(ph_pool_last_error(pool)) > 0);
    OK(ph_pool_set_max_connections(pool, 8, 2));
    CHECK(strcmp(ph_pool_last_error(pool), "") == 0);
    CHECK_CODE(ph_pool_read_body(pool, 1, buf, 0, &len), PH_ERR_INVALID_ARGUMENT);
    OK(ph_request_new("GET", "http://127.0.0.1/", &req));
    CHECK_CODE(ph_request_set_connect_timeout_ms(req, 0), PH_ERR_INVALID_ARGUMENT);
    CHECK_CODE(ph_request_set_proxy(req, "127.0.0.1", 0), PH_ERR_INVALID_ARGUMENT);
    CHECK_CODE(ph_request_set_tls_root_pem(req, (const uint8_t *)"nope", 4), PH_ERR_TLS);
    ph_request_free(req);
    ph_pool_free(pool);
    return 0;
}

static int t_unknown_id(void) {
    PhPool *pool;
    int v;
    size_t len;
    uint8_t buf[8];
    const char *s;
    OK(ph_pool_new(&pool));
    PhId ids[] = {0, 1, 12345, (PhId)-1};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        CHECK_CODE(ph_pool_cancel(pool, ids[i]), PH_ERR_UNKNOWN_ID);
        CHECK_CODE(ph_pool_progress(pool, ids[i], &v, NULL, NULL, NULL), PH_ERR_UNKNOWN_ID);
        CHECK_CODE(ph_pool_read_body(pool, ids[i], buf, sizeof buf, &len), PH_ERR_UNKNOWN_ID);
        CHECK_CODE(ph_completion_result(pool, ids[i], &v), PH_ERR_UNKNOWN_ID);
        CHECK_CODE(ph_completion_header(pool, ids[i], 0, &s), PH_ERR_UNKNOWN_ID);
        CHECK_CODE(ph_completion_free(pool, ids[i]), PH_ERR_UNKNOWN_ID);
    }
    ph_pool_free(pool);
    return 0;
}

static int t_double_free_completion(void) {
    PhPool *pool;
    PhId id;
    int r;
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_NGINX", "/hello.txt"), &id));
    OK(ph_completion_free(pool, id));
    CHECK_CODE(ph_completion_free(pool, id), PH_ERR_UNKNOWN_ID);
    CHECK_CODE(ph_completion_free(pool, id), PH_ERR_UNKNOWN_ID);
    CHECK_CODE(ph_completion_result(pool, id, &r), PH_ERR_UNKNOWN_ID);
    /* Freed before ph_pool_next_completion took it: never returned. */
    PhId next;
    CHECK_CODE(ph_pool_next_completion(pool, &next), PH_AGAIN);
    CHECK(next == 0);
    ph_pool_free(pool);
    return 0;
}

/* ---------------------------------------------------------------- requests */

static int t_get(void) {
    PhPool *pool;
    PhId id, next;
    size_t waiting = 0;
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_NGINX", "/hello.txt"), &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_is(pool, id, HELLO, strlen(HELLO)));
    OK(ph_pool_poll(pool, &waiting));
    CHECK(waiting == 1);
    OK(ph_pool_next_completion(pool, &next));
    CHECK(next == id);
    CHECK_CODE(ph_pool_next_completion(pool, &next), PH_AGAIN);
    const char *reason = NULL;
    OK(ph_completion_reason(pool, id, &reason));
    CHECK(strcmp(reason, "") == 0);
    /* A success has no partial body. */
    const uint8_t *partial = NULL;
    size_t partial_len = 99;
    OK(ph_completion_partial_body(pool, id, &partial, &partial_len));
    CHECK(partial != NULL && partial_len == 0);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_headers(void) {
    PhPool *pool;
    PhId id;
    size_t n = 0;
    const char *line, *value;
    int saw_length = 0;
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_NGINX", "/hello.txt"), &id));
    OK(ph_completion_header_count(pool, id, &n));
    CHECK(n >= 3);
    for (size_t i = 0; i < n; i++) {
        OK(ph_completion_header(pool, id, i, &line));
        CHECK(strchr(line, ':') != NULL);
        if (strcmp(line, "Content-Length: 13") == 0) {
            saw_length = 1;
        }
    }
    CHECK(saw_length);
    CHECK_CODE(ph_completion_header(pool, id, n, &line), PH_ERR_INVALID_ARGUMENT);
    OK(ph_completion_header_value(pool, id, "content-length", &value));
    CHECK(strcmp(value, "13") == 0);
    OK(ph_completion_header_value(pool, id, "SERVER", &value));
    CHECK(strncmp(value, "nginx", 5) == 0);
    CHECK_CODE(ph_completion_header_value(pool, id, "X-Not-There", &value), PH_ERR_NOT_FOUND);
    CHECK_CODE(ph_completion_header_value(pool, id, "\xff", &value), PH_ERR_UTF8);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_get_1m(void) {
    PhPool *pool;
    PhId id;
    uint8_t *want = malloc(ONE_M);
    CHECK(want != NULL);
    pseudo_random(want, ONE_M);
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_NGINX", "/1m.bin"), &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_is(pool, id, want, ONE_M));
    free(want);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_head(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    const char *value;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("HEAD", url("PH_NGINX", "/hello.txt"), &req));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_is(pool, id, "", 0));
    OK(ph_completion_header_value(pool, id, "Content-Length", &value));
    CHECK(strcmp(value, "13") == 0);
    ph_pool_free(pool); /* frees the completion too */
    return 0;
}

static int t_not_found(void) {
    PhPool *pool;
    PhId id;
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_NGINX", "/no-such-file.txt"), &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 404));
    TRY(body_has(pool, id, "404"));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_redirect_followed(void) {
    PhPool *pool;
    PhId id;
    const char *final;
    uint32_t redirects = 0;
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_NGINX", "/redirect/302"), &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_is(pool, id, HELLO, strlen(HELLO)));
    OK(ph_completion_final_url(pool, id, &final, &redirects));
    CHECK(redirects == 1);
    CHECK(strstr(final, "/hello.txt") != NULL);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_redirect_not_followed(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    const char *location;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", url("PH_NGINX", "/redirect/301"), &req));
    OK(ph_request_set_redirects(req, 0, 8));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 301));
    OK(ph_completion_header_value(pool, id, "Location", &location));
    CHECK(strstr(location, "/hello.txt") != NULL);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_redirect_limit(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", url("PH_NGINX", "/redirect/loop"), &req));
    OK(ph_request_set_redirects(req, 1, 3));
    TRY(run(pool, req, &id));
    int r;
    OK(ph_completion_result(pool, id, &r));
    CHECK(r == PH_RESULT_REDIRECT_LIMIT_REACHED);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_gzip(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    const char *value;
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_NGINX", "/gzip/hello.txt"), &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    OK(ph_completion_header_value(pool, id, "Content-Encoding", &value));
    CHECK(strcmp(value, "gzip") == 0);
    TRY(body_is(pool, id, HELLO, strlen(HELLO)));
    OK(ph_completion_free(pool, id));
    /* Not asked for: not sent. */
    OK(ph_request_new("GET", url("PH_NGINX", "/gzip/hello.txt"), &req));
    OK(ph_request_set_accept_gzip(req, 0));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    CHECK_CODE(ph_completion_header_value(pool, id, "Content-Encoding", &value), PH_ERR_NOT_FOUND);
    TRY(body_is(pool, id, HELLO, strlen(HELLO)));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_gzip_httpbin(void) {
    PhPool *pool;
    PhId id;
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_HTTPBIN", "/gzip"), &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_has(pool, id, "\"gzipped\": true"));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_post_memory(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    const char body[] = "{\"frame\": 42, \"name\": \"pollhttp\"}";
    OK(ph_pool_new(&pool));
    OK(ph_request_new("POST", url("PH_HTTPBIN", "/post"), &req));
    OK(ph_request_add_header(req, "Content-Type: application/json"));
    OK(ph_request_set_body(req, (const uint8_t *)body, strlen(body)));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_has(pool, id, "\"frame\": 42"));
    TRY(body_has(pool, id, "\"Content-Length\": \"33\""));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_post_file(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    char path[512];
    snprintf(path, sizeof path, "%s/upload.txt", env("PH_TMPDIR"));
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL);
    fputs("a body from a file", f);
    fclose(f);
    OK(ph_pool_new(&pool));
    OK(ph_request_new("PUT", url("PH_HTTPBIN", "/put"), &req));
    OK(ph_request_set_body_file(req, path));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_has(pool, id, "\"data\": \"a body from a file\""));
    OK(ph_completion_free(pool, id));
    /* A missing file is refused at submit. */
    OK(ph_request_new("POST", url("PH_HTTPBIN", "/post"), &req));
    OK(ph_request_set_body_file(req, "/nonexistent-dir/none.txt"));
    CHECK_CODE(ph_pool_submit(pool, req, &id), PH_ERR_BODY_FILE);
    ph_request_free(req);
    ph_pool_free(pool);
    return 0;
}

static int t_custom_headers(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", url("PH_HTTPBIN", "/headers"), &req));
    OK(ph_request_add_header(req, "X-Ph-Test: from C"));
    OK(ph_request_add_header(req, "X-Removed: yes"));
    OK(ph_request_clear_headers(req));
    OK(ph_request_add_header(req, "X-Ph-Test: from C"));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_has(pool, id, "\"X-Ph-Test\": \"from C\""));
    const uint8_t *data;
    size_t len;
    OK(ph_completion_body(pool, id, &data, &len));
    CHECK(memmem(data, len, "X-Removed", 9) == NULL);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_download_file(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    char path[512];
    snprintf(path, sizeof path, "%s/download.bin", env("PH_TMPDIR"));
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", url("PH_NGINX", "/1m.bin"), &req));
    OK(ph_request_set_download_file(req, path));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_is(pool, id, "", 0));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    uint8_t *want = malloc(ONE_M), *got = malloc(ONE_M + 1);
    CHECK(want != NULL && got != NULL);
    pseudo_random(want, ONE_M);
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    size_t n = fread(got, 1, ONE_M + 1, f);
    fclose(f);
    CHECK(n == ONE_M);
    CHECK(memcmp(want, got, ONE_M) == 0);
    free(want);
    free(got);
    return 0;
}

static int t_download_file_cant_open(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", url("PH_NGINX", "/1k.bin"), &req));
    OK(ph_request_set_download_file(req, "/nonexistent-dir/sub/file.bin"));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_DOWNLOAD_FILE_CANT_OPEN, 200));
    const char *reason;
    OK(ph_completion_reason(pool, id, &reason));
    CHECK(strstr(reason, "/nonexistent-dir/sub/file.bin") != NULL);
    OK(ph_completion_free(pool, id));
    /* Streaming and a download file do not go together. */
    OK(ph_request_new("GET", url("PH_NGINX", "/1k.bin"), &req));
    OK(ph_request_set_download_file(req, "/tmp/x.bin"));
    OK(ph_request_set_stream_body(req, 1));
    CHECK_CODE(ph_pool_submit(pool, req, &id), PH_ERR_CONFLICTING_SETTINGS);
    ph_request_free(req);
    ph_pool_free(pool);
    return 0;
}

static int t_body_size_limit(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    int r;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", url("PH_NGINX", "/1k.bin"), &req));
    OK(ph_request_set_body_size_limit(req, 100));
    TRY(run(pool, req, &id));
    OK(ph_completion_result(pool, id, &r));
    CHECK(r == PH_RESULT_BODY_SIZE_LIMIT_EXCEEDED);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_timeout(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    OK(ph_pool_new(&pool));
    /* The scripted server reads the request and never answers. */
    OK(ph_request_new("GET", url("PH_SILENT", "/"), &req));
    OK(ph_request_set_timeout_ms(req, 300));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_TIMEOUT, 0));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_no_response(void) {
    PhPool *pool;
    PhId id;
    OK(ph_pool_new(&pool));
    /* The scripted server reads the request and closes. */
    TRY(get(pool, url("PH_CLOSER", "/"), &id));
    TRY(expect(pool, id, PH_RESULT_NO_RESPONSE, 0));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_truncated_body(void) {
    PhPool *pool;
    PhId id;
    OK(ph_pool_new(&pool));
    /* Content-Length 100, 5 bytes, close. */
    TRY(get(pool, url("PH_TRUNCATED", "/"), &id));
    TRY(expect(pool, id, PH_RESULT_CHUNKED_BODY_SIZE_MISMATCH, 200));
    /* The body stays empty; what arrived is the partial body. */
    TRY(body_is(pool, id, "", 0));
    const uint8_t *data = NULL;
    size_t len = 99;
    OK(ph_completion_partial_body(pool, id, &data, &len));
    CHECK(data != NULL && len == 5 && memcmp(data, "short", 5) == 0);
    CHECK_CODE(ph_completion_partial_body(pool, id, NULL, &len), PH_ERR_NULL);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_refused(void) {
    PhPool *pool;
    PhId id;
    OK(ph_pool_new(&pool));
    TRY(get(pool, url("PH_REFUSED", "/"), &id));
    TRY(expect(pool, id, PH_RESULT_CANT_CONNECT, 0));
    const char *reason;
    OK(ph_completion_reason(pool, id, &reason));
    CHECK(strlen(reason) > 0);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_proxy(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", "http://game-assets.invalid/level1.pak", &req));
    OK(ph_request_set_proxy(req, "127.0.0.1", (uint16_t)atoi(env("PH_PROXY_PORT"))));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_is(pool, id, "proxied", 7));
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int read_file(const char *path, char **out, size_t *len) {
    FILE *f = fopen(path, "rb");
    CHECK(f != NULL);
    char *buf = malloc(65536);
    CHECK(buf != NULL);
    *len = fread(buf, 1, 65535, f);
    fclose(f);
    buf[*len] = '\0';
    *out = buf;
    return 0;
}

static int t_tls(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    char *pem;
    size_t pem_len;
    TRY(read_file(env("PH_CA_PEM_FILE"), &pem, &pem_len));
    OK(ph_pool_new(&pool));
    /* The test CA's roots. */
    OK(ph_request_new("GET", url("PH_NGINX_TLS", "/hello.txt"), &req));
    OK(ph_request_set_tls_root_pem(req, (const uint8_t *)pem, pem_len));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_is(pool, id, HELLO, strlen(HELLO)));
    OK(ph_completion_free(pool, id));
    /* The bundled roots do not know the test CA. */
    TRY(get(pool, url("PH_NGINX_TLS", "/hello.txt"), &id));
    TRY(expect(pool, id, PH_RESULT_TLS_HANDSHAKE_ERROR, 0));
    OK(ph_completion_free(pool, id));
    /* Verification off. */
    OK(ph_request_new("GET", url("PH_NGINX_TLS", "/hello.txt"), &req));
    OK(ph_request_set_tls_dangerous_disable_verification(req, 1));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    OK(ph_completion_free(pool, id));
    /* A name the certificate does not have. */
    OK(ph_request_new("GET", url("PH_NGINX_TLS", "/hello.txt"), &req));
    OK(ph_request_set_tls_root_pem(req, (const uint8_t *)pem, pem_len));
    OK(ph_request_set_tls_server_name(req, "wrong.example"));
    TRY(run(pool, req, &id));
    TRY(expect(pool, id, PH_RESULT_TLS_HANDSHAKE_ERROR, 0));
    OK(ph_completion_free(pool, id));
    free(pem);
    ph_pool_free(pool);
    return 0;
}

static int t_reuse_request(void) {
    PhPool *pool;
    PhRequest *req;
    PhId a, b;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", url("PH_NGINX", "/hello.txt"), &req));
    OK(ph_pool_submit(pool, req, &a));
    OK(ph_request_set_url(req, url("PH_NGINX", "/1k.bin")));
    OK(ph_pool_submit(pool, req, &b));
    ph_request_free(req); /* the submitted requests are copies */
    CHECK(a != 0 && b != 0 && a != b);
    TRY(drive(pool, a));
    TRY(drive(pool, b));
    TRY(body_is(pool, a, HELLO, strlen(HELLO)));
    const uint8_t *data;
    size_t len;
    OK(ph_completion_body(pool, b, &data, &len));
    CHECK(len == 1024);
    OK(ph_completion_free(pool, a));
    OK(ph_completion_free(pool, b));
    ph_pool_free(pool);
    return 0;
}

static int t_many_requests(void) {
    enum { N = 24 };
    PhPool *pool;
    PhRequest *req;
    PhId ids[N], got[N];
    size_t taken = 0;
    OK(ph_pool_new(&pool));
    OK(ph_pool_set_max_connections(pool, 4, 2));
    OK(ph_request_new("GET", url("PH_NGINX", "/1k.bin"), &req));
    for (int i = 0; i < N; i++) {
        OK(ph_pool_submit(pool, req, &ids[i]));
    }
    ph_request_free(req);
    double start = now_ms();
    for (int round = 0; round < MAX_ROUNDS && taken < N; round++) {
        CHECK(now_ms() - start < MAX_MS);
        OK(ph_pool_poll(pool, NULL));
        PhId id;
        while (ph_pool_next_completion(pool, &id) == PH_OK) {
            CHECK(taken < N);
            got[taken++] = id;
            TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
            OK(ph_completion_free(pool, id));
        }
        if (taken < N) {
            OK(ph_pool_wait(pool, 50, NULL));
        }
    }
    CHECK(taken == N);
    /* Each id completed exactly once. */
    for (int i = 0; i < N; i++) {
        int seen = 0;
        for (int j = 0; j < N; j++) {
            seen += got[j] == ids[i];
        }
        CHECK(seen == 1);
    }
    size_t n = 1;
    OK(ph_pool_in_flight(pool, &n));
    CHECK(n == 0);
    ph_pool_free(pool);
    return 0;
}

/* Poll `id` until some of its body arrived (bounded); its progress then. */
static int until_downloading(PhPool *pool, PhId id, int *stage, uint64_t *downloaded,
                             int64_t *size, uint64_t *uploaded) {
    double start = now_ms();
    *downloaded = 0;
    for (int i = 0; i < MAX_ROUNDS && *downloaded == 0; i++) {
        CHECK(now_ms() - start < MAX_MS);
        OK(ph_pool_poll(pool, NULL));
        OK(ph_pool_progress(pool, id, stage, downloaded, size, uploaded));
        if (*downloaded == 0) {
            OK(ph_pool_wait(pool, 50, NULL));
        }
    }
    CHECK(*downloaded > 0);
    return 0;
}

static int t_progress_and_cancel_mid_body(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id, next;
    int stage = -1, r;
    uint64_t downloaded = 0, uploaded = 1;
    int64_t size = 0;
    OK(ph_pool_new(&pool));
    /* nginx sends /slow/ at 64 KiB/s: 16 s for 1 MiB. */
    OK(ph_request_new("GET", url("PH_NGINX", "/slow/1m.bin"), &req));
    OK(ph_pool_submit(pool, req, &id));
    ph_request_free(req);
    TRY(until_downloading(pool, id, &stage, &downloaded, &size, &uploaded));
    CHECK(downloaded > 0 && downloaded < ONE_M);
    CHECK(stage == PH_STAGE_BODY);
    CHECK(size == ONE_M);
    CHECK(uploaded == 0);
    OK(ph_pool_progress(pool, id, NULL, NULL, NULL, NULL));
    OK(ph_pool_cancel(pool, id));
    CHECK_CODE(ph_pool_cancel(pool, id), PH_ERR_UNKNOWN_ID);
    CHECK_CODE(ph_pool_progress(pool, id, &stage, NULL, NULL, NULL), PH_ERR_UNKNOWN_ID);
    for (int i = 0; i < 5; i++) {
        OK(ph_pool_poll(pool, NULL));
        OK(ph_pool_wait(pool, 10, NULL));
    }
    CHECK_CODE(ph_pool_next_completion(pool, &next), PH_AGAIN);
    CHECK_CODE(ph_completion_result(pool, id, &r), PH_ERR_UNKNOWN_ID);
    ph_pool_free(pool);
    return 0;
}

static int t_pause_and_resume(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    uint64_t downloaded = 0, paused_at = 0, later = 0;
    uint8_t *want = malloc(ONE_M);
    CHECK(want != NULL);
    pseudo_random(want, ONE_M);
    OK(ph_pool_new(&pool));
    CHECK_CODE(ph_pool_pause(NULL, 1), PH_ERR_NULL);
    CHECK_CODE(ph_pool_pause(pool, 12345), PH_ERR_UNKNOWN_ID);
    CHECK_CODE(ph_pool_resume(pool, 12345), PH_ERR_UNKNOWN_ID);
    /* At most 16 KiB per poll: a poll that reads moves the progress. */
    OK(ph_pool_set_poll_budget(pool, 16384, -1));
    OK(ph_request_new("GET", url("PH_NGINX", "/1m.bin"), &req));
    OK(ph_pool_submit(pool, req, &id));
    ph_request_free(req);
    TRY(until_downloading(pool, id, NULL, &downloaded, NULL, NULL));
    CHECK(downloaded > 0 && downloaded < ONE_M);
    OK(ph_pool_pause(pool, id));
    OK(ph_pool_pause(pool, id)); /* again: nothing changes */
    OK(ph_pool_progress(pool, id, NULL, &paused_at, NULL, NULL));
    /* Paused: however many polls, nothing is read (unpaused, each poll
       would read 16 KiB the server has sent). */
    for (int i = 0; i < 10; i++) {
        OK(ph_pool_poll(pool, NULL));
        OK(ph_pool_wait(pool, 10, NULL));
    }
    OK(ph_pool_progress(pool, id, NULL, &later, NULL, NULL));
    CHECK(later == paused_at);
    /* Resumed: the rest arrives, nothing lost. */
    OK(ph_pool_resume(pool, id));
    TRY(drive(pool, id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    TRY(body_is(pool, id, want, ONE_M));
    CHECK_CODE(ph_pool_pause(pool, id), PH_ERR_UNKNOWN_ID);
    free(want);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_cancel_during_dns(void) {
    PhPool *pool;
    PhRequest *req;
    PhId queued, resolving, next;
    int stage = -1;
    OK(ph_pool_new(&pool));
    /* A name, not an IP literal: it takes a lookup on a resolver thread. */
    char u[256];
    snprintf(u, sizeof u, "http://localhost:%s/hello.txt", env("PH_NGINX_PORT"));
    OK(ph_request_new("GET", u, &req));
    OK(ph_pool_submit(pool, req, &queued));
    OK(ph_pool_cancel(pool, queued)); /* before any poll: still queued */
    OK(ph_pool_submit(pool, req, &resolving));
    ph_request_free(req);
    OK(ph_pool_poll(pool, NULL));
    PhCode c = ph_pool_progress(pool, resolving, &stage, NULL, NULL, NULL);
    if (c == PH_OK) {
        /* Resolving or already connecting (a fast resolver): either way
           the cancel must not wait for the lookup. */
        OK(ph_pool_cancel(pool, resolving));
    } else {
        CHECK(!"the request completed in one poll");
    }
    for (int i = 0; i < 10; i++) {
        OK(ph_pool_poll(pool, NULL));
        OK(ph_pool_wait(pool, 10, NULL));
    }
    CHECK_CODE(ph_pool_next_completion(pool, &next), PH_AGAIN);
    size_t n = 1;
    OK(ph_pool_in_flight(pool, &n));
    CHECK(n == 0);
    /* The pool still works. */
    PhId id;
    TRY(get(pool, u, &id));
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    ph_pool_free(pool);
    return 0;
}

static int t_stream_body(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    uint8_t *want = malloc(ONE_M), *got = malloc(ONE_M);
    uint8_t buf[1000];
    size_t have = 0;
    CHECK(want != NULL && got != NULL);
    pseudo_random(want, ONE_M);
    OK(ph_pool_new(&pool));
    OK(ph_pool_set_stream_high_water(pool, 65536));
    OK(ph_request_new("GET", url("PH_NGINX", "/1m.bin"), &req));
    OK(ph_request_set_stream_body(req, 1));
    OK(ph_pool_submit(pool, req, &id));
    ph_request_free(req);
    double start = now_ms();
    int done = 0, pieces = 0;
    for (int i = 0; i < MAX_ROUNDS && !done; i++) {
        CHECK(now_ms() - start < MAX_MS);
        OK(ph_pool_poll(pool, NULL));
        size_t n;
        PhCode c;
        while ((c = ph_pool_read_body(pool, id, buf, sizeof buf, &n)) == PH_OK) {
            CHECK(n > 0 && n <= sizeof buf && have + n <= ONE_M);
            memcpy(got + have, buf, n);
            have += n;
            pieces++;
        }
        int r;
        if (ph_completion_result(pool, id, &r) == PH_OK) {
            CHECK_CODE(c, PH_ERR_UNKNOWN_ID); /* completed: the rest is the body */
            done = 1;
        } else {
            CHECK_CODE(c, PH_AGAIN);
            OK(ph_pool_wait(pool, 50, NULL));
        }
    }
    CHECK(done);
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    const uint8_t *rest;
    size_t rest_len;
    OK(ph_completion_body(pool, id, &rest, &rest_len));
    CHECK(have + rest_len == ONE_M);
    memcpy(got + have, rest, rest_len);
    CHECK(memcmp(got, want, ONE_M) == 0);
    CHECK(pieces > 100);
    free(want);
    free(got);
    OK(ph_completion_free(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_poll_budget(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    int polls = 0, r;
    OK(ph_pool_new(&pool));
    /* 16 KiB per poll, no time limit: 1 MiB takes at least 64 polls. */
    OK(ph_pool_set_poll_budget(pool, 16384, -1));
    OK(ph_request_new("GET", url("PH_NGINX", "/1m.bin"), &req));
    OK(ph_pool_submit(pool, req, &id));
    ph_request_free(req);
    double start = now_ms();
    while (ph_completion_result(pool, id, &r) == PH_AGAIN) {
        CHECK(polls < MAX_ROUNDS && now_ms() - start < MAX_MS);
        OK(ph_pool_poll(pool, NULL));
        polls++;
        OK(ph_pool_wait(pool, 50, NULL));
    }
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    CHECK(polls >= 64);
    ph_pool_free(pool);
    return 0;
}

static int t_nested_poll(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id, next;
    int fd = -1;
    int64_t timeout = 0;
    OK(ph_pool_new(&pool));
    OK(ph_pool_fd(pool, &fd));
    CHECK(fd >= 0);
    OK(ph_pool_timeout(pool, &timeout));
    CHECK(timeout == -1); /* nothing to do: only a socket brings work */
    OK(ph_request_new("GET", url("PH_NGINX", "/1m.bin"), &req));
    OK(ph_pool_submit(pool, req, &id));
    ph_request_free(req);
    OK(ph_pool_timeout(pool, &timeout));
    CHECK(timeout == 0); /* a request waits to start */
    double start = now_ms();
    int done = 0, rounds = 0;
    while (!done) {
        CHECK(++rounds < MAX_ROUNDS && now_ms() - start < MAX_MS);
        /* The program's own loop: poll(2) on the pool's fd. */
        OK(ph_pool_timeout(pool, &timeout));
        int wait_ms = (timeout < 0 || timeout > 100) ? 100 : (int)timeout;
        struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
        int n = poll(&pfd, 1, wait_ms);
        CHECK(n >= 0 || errno == EINTR);
        OK(ph_pool_poll(pool, NULL));
        done = ph_pool_next_completion(pool, &next) == PH_OK;
    }
    CHECK(next == id);
    TRY(expect(pool, id, PH_RESULT_SUCCESS, 200));
    OK(ph_pool_timeout(pool, &timeout));
    ph_pool_free(pool);
    return 0;
}

struct waker_args {
    PhWake *wake;
    int ok;
};

static void *waker_thread(void *p) {
    struct waker_args *a = p;
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    a->ok = ph_wake(a->wake) == PH_OK;
    return NULL;
}

static int t_wake_from_thread(void) {
    PhPool *pool;
    struct waker_args a = {NULL, 0};
    pthread_t thread;
    int ready = -1;
    OK(ph_pool_new(&pool));
    OK(ph_pool_wake_handle(pool, &a.wake));
    CHECK(pthread_create(&thread, NULL, waker_thread, &a) == 0);
    /* Nothing in flight: only the wake can end this before 30 s, and a
       timeout would answer ready = 0. */
    OK(ph_pool_wait(pool, 30000, &ready));
    CHECK(pthread_join(thread, NULL) == 0);
    CHECK(a.ok);
    CHECK(ready == 1);
    OK(ph_pool_poll(pool, NULL));
    ph_pool_free(pool);
    /* A wake handle may outlive its pool. */
    OK(ph_wake(a.wake));
    ph_wake_free(a.wake);
    return 0;
}

static int t_timeout_values(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    int64_t timeout = 5;
    int ready = -1;
    OK(ph_pool_new(&pool));
    OK(ph_pool_timeout(pool, &timeout));
    CHECK(timeout == -1);
    OK(ph_pool_wait(pool, 0, &ready));
    CHECK(ready == 0);
    TRY(get(pool, url("PH_NGINX", "/hello.txt"), &id));
    /* A completion waits to be taken: work is pending now. */
    OK(ph_pool_timeout(pool, &timeout));
    CHECK(timeout == 0);
    OK(ph_pool_wait(pool, 10000, &ready));
    CHECK(ready == 1);
    OK(ph_completion_free(pool, id));
    /* A request with a deadline: a finite timeout. */
    OK(ph_request_new("GET", url("PH_SILENT2", "/"), &req));
    OK(ph_request_set_timeout_ms(req, 20000));
    OK(ph_pool_submit(pool, req, &id));
    ph_request_free(req);
    for (int i = 0; i < 100; i++) {
        OK(ph_pool_poll(pool, NULL));
        OK(ph_pool_timeout(pool, &timeout));
        if (timeout > 0) {
            break;
        }
    }
    CHECK(timeout > 0 && timeout <= 20000);
    OK(ph_pool_cancel(pool, id));
    ph_pool_free(pool);
    return 0;
}

static int t_free_pool_in_flight(void) {
    PhPool *pool;
    PhRequest *req;
    PhId id;
    OK(ph_pool_new(&pool));
    OK(ph_request_new("GET", url("PH_NGINX", "/slow/1m.bin"), &req));
    OK(ph_request_set_body(req, (const uint8_t *)"abc", 3));
    OK(ph_pool_submit(pool, req, &id));
    OK(ph_pool_submit(pool, req, &id));
    ph_request_free(req);
    for (int i = 0; i < 5; i++) {
        OK(ph_pool_poll(pool, NULL));
        OK(ph_pool_wait(pool, 20, NULL));
    }
    ph_pool_free(pool); /* no leak, no wait */
    return 0;
}

static int t_two_pools(void) {
    PhPool *a, *b;
    PhId ia, ib;
    int fa, fb;
    OK(ph_pool_new(&a));
    OK(ph_pool_new(&b));
    OK(ph_pool_fd(a, &fa));
    OK(ph_pool_fd(b, &fb));
    CHECK(fa != fb);
    TRY(get(a, url("PH_NGINX", "/hello.txt"), &ia));
    TRY(get(b, url("PH_NGINX", "/hello.txt"), &ib));
    /* Ids are per pool; a completion lives in its own pool only. */
    int r;
    OK(ph_completion_free(a, ia));
    CHECK_CODE(ph_completion_result(a, ia, &r), PH_ERR_UNKNOWN_ID);
    if (ia == ib) {
        OK(ph_completion_result(b, ib, &r));
    }
    ph_pool_free(a);
    ph_pool_free(b);
    return 0;
}

/* ---------------------------------------------------------------- main */

struct test_case {
    const char *name;
    int (*run)(void);
};

static const struct test_case CASES[] = {
    {"version", t_version},
    {"strerror", t_strerror},
    {"null_arguments", t_null_arguments},
    {"free_null", t_free_null},
    {"invalid_utf8", t_invalid_utf8},
    {"header_crlf", t_header_crlf},
    {"bad_url", t_bad_url},
    {"invalid_arguments", t_invalid_arguments},
    {"unknown_id", t_unknown_id},
    {"double_free_completion", t_double_free_completion},
    {"get", t_get},
    {"headers", t_headers},
    {"get_1m", t_get_1m},
    {"head", t_head},
    {"not_found", t_not_found},
    {"redirect_followed", t_redirect_followed},
    {"redirect_not_followed", t_redirect_not_followed},
    {"redirect_limit", t_redirect_limit},
    {"gzip", t_gzip},
    {"gzip_httpbin", t_gzip_httpbin},
    {"post_memory", t_post_memory},
    {"post_file", t_post_file},
    {"custom_headers", t_custom_headers},
    {"download_file", t_download_file},
    {"download_file_cant_open", t_download_file_cant_open},
    {"body_size_limit", t_body_size_limit},
    {"timeout", t_timeout},
    {"no_response", t_no_response},
    {"truncated_body", t_truncated_body},
    {"refused", t_refused},
    {"proxy", t_proxy},
    {"tls", t_tls},
    {"reuse_request", t_reuse_request},
    {"many_requests", t_many_requests},
    {"progress_and_cancel_mid_body", t_progress_and_cancel_mid_body},
    {"pause_and_resume", t_pause_and_resume},
    {"cancel_during_dns", t_cancel_during_dns},
    {"stream_body", t_stream_body},
    {"poll_budget", t_poll_budget},
    {"nested_poll", t_nested_poll},
    {"wake_from_thread", t_wake_from_thread},
    {"timeout_values", t_timeout_values},
    {"free_pool_in_flight", t_free_pool_in_flight},
    {"two_pools", t_two_pools},
};

int main(int argc, char **argv) {
    size_t n = sizeof CASES / sizeof CASES[0];
    int failed = 0, ran = 0;
    for (size_t i = 0; i < n; i++) {
        int wanted = argc < 2;
        for (int a = 1; a < argc; a++) {
            wanted |= strcmp(argv[a], CASES[i].name) == 0;
        }
        if (!wanted) {
            continue;
        }
        current = CASES[i].name;
        int rc = CASES[i].run();
        ran++;
        printf("%s %s\n", rc == 0 ? "ok" : "FAIL", CASES[i].name);
        fflush(stdout);
        failed += rc != 0;
    }
    printf("cases: %d ran, %d failed\n", ran, failed);
    return failed == 0 && ran > 0 ? 0 : 1;
}
