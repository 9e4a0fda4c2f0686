/* test_list.c - the comma-list splitter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "topowire/error.h"
#include "topowire/list.h"

static void assert_item(const tw_list_item *it, const char *want)
{
    assert_int_equal(it->len, strlen(want));
    assert_memory_equal(it->p, want, it->len);
}

static void splits(void **state)
{
    (void)state;
    tw_list_item items[4];
    size_t n = 0;
    char err[TW_ERRLEN] = "";
    const char *list = "downward,kubernetes,imds";
    assert_int_equal(tw_list_split(list, items, 4, &n, err), TW_OK);
    assert_int_equal(n, 3);
    assert_item(&items[0], "downward");
    assert_item(&items[1], "kubernetes");
    assert_item(&items[2], "imds");
    assert_ptr_equal(items[0].p, list); /* borrowed, not copied */
    assert_int_equal(tw_list_split("one", items, 1, &n, err), TW_OK);
    assert_int_equal(n, 1);
    assert_item(&items[0], "one");
    /* Spaces are kept: the item's own check refuses them. */
    assert_int_equal(tw_list_split(" a ,b", items, 4, &n, err), TW_OK);
    assert_item(&items[0], " a ");
    assert_item(&items[1], "b");
}

static void refuses(void **state)
{
    (void)state;
    tw_list_item items[3] = {{"untouched", 9}};
    size_t n = 42;
    char err[TW_ERRLEN] = "";
    static const struct {
        const char *list;
        const char *why;
    } bad[] = {
        {"", "the list is empty"},     {",", "item 1 is empty"},
        {"a,", "item 2 is empty"},     {",a", "item 1 is empty"},
        {"a,,b", "item 2 is empty"},   {"a,b,c,d", "more than 3 items"},
        {",,,,", "more than 3 items"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(tw_list_split(bad[i].list, items, 3, &n, err), TW_EINVAL);
        if (strstr(err, bad[i].why) == NULL)
            fail_msg("\"%s\": \"%s\" lacks \"%s\"", bad[i].list, err, bad[i].why);
        assert_int_equal(n, 42);
        assert_item(&items[0], "untouched");
    }
    assert_int_equal(tw_list_split(NULL, items, 3, &n, NULL), TW_EINVAL);
    assert_int_equal(tw_list_split("a", items, 0, &n, NULL), TW_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(splits),
        cmocka_unit_test(refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
