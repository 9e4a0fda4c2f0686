/* cli.c - the programs' command-line flags over getopt_long. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "topowire/cli.h"
#include "topowire/clock.h"
#include "topowire/error.h"
#include "topowire/label.h"
#include "topowire/list.h"
#include "topowire/text.h"

/* getopt_long's value for the flag at index i; below it are getopt's own answers. */
#define FLAG_VAL_BASE 256

static int takes_argument(tw_flag_kind k)
{
    return k != TW_FLAG_SET && k != TW_FLAG_HELP && k != TW_FLAG_VERSION;
}

/* Parses "N" (or "Ns" when seconds) from 0 to max. */
static int parse_unsigned(const char *v, unsigned max, int seconds, unsigned *out)
{
    char *end = NULL;
    errno = 0;
    if (v[0] < '0' || v[0] > '9')
        return TW_EINVAL;
    unsigned long n = strtoul(v, &end, 10);
    if (seconds && *end == 's')
        end++;
    if (errno != 0 || *end != '\0' || n > max)
        return TW_EINVAL;
    *out = (unsigned)n;
    return TW_OK;
}

/* Applies one flag's argument; TW_EINVAL with why completing `--flag: "arg" ...`. */
static int apply(const tw_flag *f, const char *arg, char *why, size_t why_len)
{
    switch (f->kind) {
    case TW_FLAG_STRING:
        *(const char **)f->target = arg;
        return TW_OK;
    case TW_FLAG_SET:
        *(int *)f->target = 1;
        return TW_OK;
    case TW_FLAG_BOOL:
        if (strcmp(arg, "true") == 0 || strcmp(arg, "false") == 0) {
            *(int *)f->target = arg[0] == 't';
            return TW_OK;
        }
        snprintf(why, why_len, "is not true or false");
        return TW_EINVAL;
    case TW_FLAG_COUNT:
    case TW_FLAG_SECONDS:
        if (parse_unsigned(arg, f->max, f->kind == TW_FLAG_SECONDS, f->target) == TW_OK)
            return TW_OK;
        snprintf(why, why_len, "is not %s from 0 to %u",
                 f->kind == TW_FLAG_SECONDS ? "a number of seconds" : "a number", f->max);
        return TW_EINVAL;
    case TW_FLAG_DURATION: {
        long ms = 0;
        if (tw_duration_parse(arg, &ms) == TW_OK && ms > 0) {
            *(long *)f->target = ms;
            return TW_OK;
        }
        snprintf(why, why_len, "is not a duration such as 10s or 500ms");
        return TW_EINVAL;
    }
    case TW_FLAG_CALL:
        return f->parse(f->target, arg, why, why_len);
    case TW_FLAG_HELP:
    case TW_FLAG_VERSION:
        return TW_OK;
    }
    return TW_EINVAL;
}

int tw_flags_parse(const char *prog, const tw_flag *flags, size_t n, int argc, char **argv)
{
    struct option *opts = calloc(n + 1, sizeof(*opts));
    if (opts == NULL) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return TW_FLAGS_USAGE;
    }
    for (size_t i = 0; i < n; i++) {
        opts[i].name = flags[i].name;
        opts[i].has_arg = takes_argument(flags[i].kind) ? required_argument : no_argument;
        opts[i].val = FLAG_VAL_BASE + (int)i;
    }
    int result = TW_FLAGS_GO, c;
    opterr = 0;
    optind = 0; /* GNU getopt: start afresh at argv[1] */
    while (result == TW_FLAGS_GO && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c < FLAG_VAL_BASE || c >= FLAG_VAL_BASE + (int)n) {
            if (optopt >= FLAG_VAL_BASE)
                fprintf(stderr, "%s: %s needs a value\n", prog, argv[optind - 1]);
            else
                fprintf(stderr, "%s: unknown flag %s\n", prog, argv[optind - 1]);
            result = TW_FLAGS_USAGE;
            break;
        }
        const tw_flag *f = &flags[c - FLAG_VAL_BASE];
        char why[TW_ERRLEN] = "";
        int rc = apply(f, optarg, why, sizeof(why));
        if (rc == TW_ENOMEM) {
            fprintf(stderr, "%s: out of memory\n", prog);
            result = TW_FLAGS_USAGE;
        } else if (rc != TW_OK) {
            char arg[TW_TEXT_SHOWN_SIZE];
            fprintf(stderr, "%s: --%s: \"%s\" %s\n", prog, f->name,
                    tw_text_show(arg, sizeof(arg), optarg, strlen(optarg)), why);
            result = TW_FLAGS_USAGE;
        } else if (f->kind == TW_FLAG_HELP) {
            result = TW_FLAGS_HELP;
        } else if (f->kind == TW_FLAG_VERSION) {
            result = TW_FLAGS_VERSION;
        }
    }
    if (result == TW_FLAGS_GO && optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\n", prog, argv[optind]);
        result = TW_FLAGS_USAGE;
    }
    if (result == TW_FLAGS_USAGE)
        fprintf(stderr, "Try '%s --help'.\n", prog);
    free(opts);
    return result;
}

int tw_flag_log_format(void *target, const char *arg, char *why, size_t why_len)
{
    if (tw_log_parse_format(arg, target) == TW_OK)
        return TW_OK;
    snprintf(why, why_len, "is not text or json");
    return TW_EINVAL;
}

int tw_flag_log_level(void *target, const char *arg, char *why, size_t why_len)
{
    if (tw_log_parse_level(arg, target) == TW_OK)
        return TW_OK;
    snprintf(why, why_len, "is not debug, info, warn or error");
    return TW_EINVAL;
}

void tw_label_keys_free(tw_label_keys *k)
{
    for (size_t i = 0; i < TW_LABEL_KEYS_MAX && k->keys[i] != NULL; i++) {
        free(k->keys[i]);
        k->keys[i] = NULL;
    }
}

int tw_flag_label_keys(void *target, const char *arg, char *why, size_t why_len)
{
    tw_list_item items[TW_LABEL_KEYS_MAX];
    size_t n = 0;
    char err[TW_ERRLEN];
    if (tw_list_split(arg, items, TW_LABEL_KEYS_MAX, &n, err) != TW_OK) {
        snprintf(why, why_len, "is not a list of label keys: %s", err);
        return TW_EINVAL;
    }
    tw_label_keys next = {{NULL}};
    for (size_t i = 0; i < n; i++) {
        if ((next.keys[i] = strndup(items[i].p, items[i].len)) == NULL) {
            tw_label_keys_free(&next);
            return TW_ENOMEM;
        }
        if (!tw_label_key_valid(next.keys[i])) {
            char shown[TW_TEXT_SHOWN_SIZE];
            snprintf(why, why_len, "holds \"%s\", which is not a valid label key",
                     tw_text_show(shown, sizeof(shown), items[i].p, items[i].len));
            tw_label_keys_free(&next);
            return TW_EINVAL;
        }
    }
    tw_label_keys_free(target);
    *(tw_label_keys *)target = next;
    return TW_OK;
}
