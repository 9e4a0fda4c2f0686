/* kubepatch.c - run `kubectl patch --local --type=json` for the tests. */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "kubepatch.h"
#include "testserver.h"

extern char **environ;

cJSON *tw_test_kubectl_patch(const cJSON *obj, const char *patch)
{
    char dir[] = "/tmp/tw-kubepatch-XXXXXX";
    char in[64], out[64];
    cJSON *result = NULL;
    char *text = NULL, *json = NULL;
    if (mkdtemp(dir) == NULL)
        return NULL;
    snprintf(in, sizeof(in), "%s/obj.json", dir);
    snprintf(out, sizeof(out), "%s/out.json", dir);
    json = cJSON_PrintUnformatted(obj);
    FILE *f = json ? fopen(in, "w") : NULL;
    if (f == NULL)
        goto out;
    fputs(json, f);
    fclose(f);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    char *argv[] = {"kubectl", "patch",       "--local", "--type=json", "-f", in,
                    "-p",      (char *)patch, "-o",      "json",        NULL};
    pid_t pid;
    int st = -1;
    if (posix_spawnp(&pid, "kubectl", &fa, NULL, argv, environ) == 0)
        waitpid(pid, &st, 0);
    posix_spawn_file_actions_destroy(&fa);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "kubectl patch failed (status %d) for patch %s\n", st, patch);
        goto out;
    }
    text = tw_test_read_file(out, NULL);
    result = text ? cJSON_Parse(text) : NULL;
    if (result && !cJSON_IsObject(result)) {
        cJSON_Delete(result);
        result = NULL;
    }
out:
    cJSON_free(json);
    free(text);
    unlink(in);
    unlink(out);
    rmdir(dir);
    return result;
}
