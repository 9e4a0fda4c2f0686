/* test_cli.c - the programs' flag tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "topowire/cli.h"
#include "topowire/error.h"

typedef struct opts {
    const char *name;
    int set, on;
    unsigned count, secs;
    long ms;
    tw_log_format fmt;
    tw_log_level lvl;
    tw_label_keys keys;
} opts;

/* Parses the NULL-terminated args (after a program name) into o; stderr goes to err. */
static int run(opts *o, char *err, size_t err_len, ...)
{
    char *argv[32] = {(char *)"prog"};
    int argc = 1;
    va_list ap;
    va_start(ap, err_len);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && argc < 31;)
        argv[argc++] = (char *)a;
    va_end(ap);
    const tw_flag flags[] = {
        {"name", TW_FLAG_STRING, 0, &o->name, NULL},
        {"set", TW_FLAG_SET, 0, &o->set, NULL},
        {"on", TW_FLAG_BOOL, 0, &o->on, NULL},
        {"count", TW_FLAG_COUNT, 100, &o->count, NULL},
        {"secs", TW_FLAG_SECONDS, 3600, &o->secs, NULL},
        {"timeout", TW_FLAG_DURATION, 0, &o->ms, NULL},
        {"log-format", TW_FLAG_CALL, 0, &o->fmt, tw_flag_log_format},
        {"log-level", TW_FLAG_CALL, 0, &o->lvl, tw_flag_log_level},
        {"keys", TW_FLAG_CALL, 0, &o->keys, tw_flag_label_keys},
        {"help", TW_FLAG_HELP, 0, NULL, NULL},
        {"version", TW_FLAG_VERSION, 0, NULL, NULL},
    };
    fflush(stderr);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    int rc = tw_flags_parse("prog", flags, sizeof(flags) / sizeof(flags[0]), argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    size_t n = fread(err, 1, err_len - 1, tmp);
    err[n] = '\0';
    fclose(tmp);
    return rc;
}

static void every_kind(void **state)
{
    (void)state;
    opts o = {.on = 1};
    char err[1024];
    int rc = run(&o, err, sizeof(err), "--name", "x", "--set", "--on", "false", "--count", "100",
                 "--secs", "30s", "--timeout", "500ms", "--log-format", "json", "--log-level",
                 "debug", "--keys", "a.io/b,c", NULL);
    if (rc != TW_FLAGS_GO)
        fail_msg("%s", err);
    assert_string_equal(err, "");
    assert_string_equal(o.name, "x");
    assert_int_equal(o.set, 1);
    assert_int_equal(o.on, 0);
    assert_int_equal(o.count, 100);
    assert_int_equal(o.secs, 30);
    assert_int_equal(o.ms, 500);
    assert_int_equal(o.fmt, TW_LOG_JSON);
    assert_int_equal(o.lvl, TW_LOG_DEBUG);
    assert_string_equal(o.keys.keys[0], "a.io/b");
    assert_string_equal(o.keys.keys[1], "c");
    assert_null(o.keys.keys[2]);
    /* A later list replaces the earlier one. */
    assert_int_equal(run(&o, err, sizeof(err), "--keys", "z", "--name=y", NULL), TW_FLAGS_GO);
    assert_string_equal(o.keys.keys[0], "z");
    assert_null(o.keys.keys[1]);
    assert_string_equal(o.name, "y");
    tw_label_keys_free(&o.keys);
    assert_int_equal(run(&o, err, sizeof(err), "--help", NULL), TW_FLAGS_HELP);
    assert_int_equal(run(&o, err, sizeof(err), "--version", NULL), TW_FLAGS_VERSION);
}

#define assert_usage(o, want, ...)                                                                 \
    do {                                                                                           \
        char err_[1024];                                                                           \
        assert_int_equal(run(o, err_, sizeof(err_), __VA_ARGS__, NULL), TW_FLAGS_USAGE);           \
        if (strstr(err_, want) == NULL)                                                            \
            fail_msg("\"%s\" does not contain \"%s\"", err_, want);                                \
        if (strstr(err_, "Try 'prog --help'.") == NULL)                                            \
            fail_msg("\"%s\" does not point at --help", err_);                                     \
    } while (0)

static void usage_errors(void **state)
{
    (void)state;
    opts o = {.count = 7, .ms = 9};
    assert_usage(&o, "prog: --count: \"101\" is not a number from 0 to 100", "--count", "101");
    assert_usage(&o, "\"5s\" is not a number from 0 to 100", "--count", "5s");
    assert_usage(&o, "\"-1\" is not a number", "--count", "-1");
    assert_usage(&o, "\"\" is not a number", "--count", "");
    assert_usage(&o, "is not a number of seconds from 0 to 3600", "--secs", "3601");
    assert_usage(&o, "\"0s\" is not a duration", "--timeout", "0s");
    assert_usage(&o, "\"maybe\" is not true or false", "--on", "maybe");
    assert_usage(&o, "\"xml\" is not text or json", "--log-format", "xml");
    assert_usage(&o, "\"loud\" is not debug, info, warn or error", "--log-level", "loud");
    assert_usage(&o, "unknown flag --nope", "--nope");
    assert_usage(&o, "--count needs a value", "--count");
    assert_usage(&o, "unexpected argument \"extra\"", "extra");
    /* Targets keep their values when an argument is refused. */
    assert_int_equal(o.count, 7);
    assert_int_equal(o.ms, 9);
    /* A rejected argument is shown bounded and printable. */
    char big[300];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    big[3] = '\n';
    char err[1024];
    assert_int_equal(run(&o, err, sizeof(err), "--count", big, NULL), TW_FLAGS_USAGE);
    assert_non_null(strstr(err, "\"xxx?xxx"));
    assert_non_null(strstr(err, "...\" is not a number"));
    assert_true(strlen(err) < 200);
}

static void label_key_lists(void **state)
{
    (void)state;
    opts o;
    memset(&o, 0, sizeof(o));
    assert_usage(&o, "\"a,,b\" is not a list of label keys: item 2 is empty", "--keys", "a,,b");
    assert_usage(&o, "item 2 is empty", "--keys", "a,");
    assert_usage(&o, "the list is empty", "--keys", "");
    assert_usage(&o, "holds \"Bad Key\", which is not a valid label key", "--keys", "a,Bad Key");
    assert_usage(&o, "more than 16 items", "--keys", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q");
    assert_null(o.keys.keys[0]);
    char err[1024];
    assert_int_equal(run(&o, err, sizeof(err), "--keys", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p", NULL),
                     TW_FLAGS_GO);
    assert_string_equal(o.keys.keys[15], "p");
    assert_null(o.keys.keys[16]);
    tw_label_keys_free(&o.keys);
    assert_null(o.keys.keys[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_kind),
        cmocka_unit_test(usage_errors),
        cmocka_unit_test(label_key_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
