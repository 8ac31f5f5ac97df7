/* test-status.c - status strings, the thread-local last error, version. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "core/status.h"

static void test_status_strings(void **state) {
    (void)state;
    assert_string_equal(smoe_status_string(SMOE_OK), "ok");
    assert_string_equal(smoe_status_string(SMOE_ERR_CORRUPT_FILE), "corrupt file");
    assert_string_equal(smoe_status_string((smoe_status)-1000), "unknown status");
    for (int s = 0; s >= -10; s--) assert_non_null(smoe_status_string((smoe_status)s));
}

static smoe_status fails_with_detail(int n) {
    SMOE_RETURN_IF(n > 3, SMOE_ERR_INVALID_ARGUMENT, "n = %d exceeds 3", n);
    return SMOE_OK;
}

static void test_last_error(void **state) {
    (void)state;
    smoe_clear_error();
    assert_int_equal(fails_with_detail(2), SMOE_OK);
    assert_string_equal(smoe_last_error(), "");
    assert_int_equal(fails_with_detail(5), SMOE_ERR_INVALID_ARGUMENT);
    assert_string_equal(smoe_last_error(), "n = 5 exceeds 3");
    smoe_error_prefix("file %s", "x.gguf");
    assert_string_equal(smoe_last_error(), "file x.gguf: n = 5 exceeds 3");
}

static void *thread_main(void *arg) {
    (void)arg;
    /* a fresh thread sees no error from another thread */
    return (void *)(uintptr_t)(smoe_last_error()[0] == '\0');
}

static void test_last_error_thread_local(void **state) {
    (void)state;
    smoe_set_error(SMOE_ERR_IO, "main thread error");
    pthread_t t;
    void *res = NULL;
    assert_int_equal(pthread_create(&t, NULL, thread_main, NULL), 0);
    assert_int_equal(pthread_join(t, &res), 0);
    assert_true((uintptr_t)res == 1);
    assert_string_equal(smoe_last_error(), "main thread error");
}

static void test_version(void **state) {
    (void)state;
    assert_int_equal(smoe_version_number(), SMOE_VERSION_NUMBER);
    char buf[32];
    snprintf(buf, sizeof(buf), "%d.%d.%d", SMOE_VERSION_MAJOR, SMOE_VERSION_MINOR, SMOE_VERSION_PATCH);
    assert_string_equal(smoe_version(), buf);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_strings),
        cmocka_unit_test(test_last_error),
        cmocka_unit_test(test_last_error_thread_local),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
