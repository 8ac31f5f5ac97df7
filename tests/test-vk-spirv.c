/*
 * test-vk-spirv.c - validates every SPIR-V module embedded in the Vulkan backend with spirv-val (path in argv[1]),
 * for the Vulkan 1.2 environment the backend targets. Each module is written to a temporary file first.
 * Exit status: 0 when all pass; prints one line per failing module.
 */
#include "backends/vulkan/vk-impl.h"

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PATH-TO-spirv-val\n", argv[0]);
        return 2;
    }
    char path[] = "/tmp/smoe-spirv-XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) {
        perror("mkstemp");
        return 1;
    }
    close(fd);
    int failed = 0;
    for (int i = 0; i < smoe_vk_n_shaders; i++) {
        const smoe_vk_shader *s = &smoe_vk_shaders[i];
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(s->code, 1, s->size, f) != s->size || fclose(f) != 0) {
            perror(path);
            unlink(path);
            return 1;
        }
        char *args[] = {argv[1], "--target-env", "vulkan1.2", path, NULL};
        pid_t pid;
        int status = 0;
        if (posix_spawn(&pid, argv[1], NULL, NULL, args, environ) != 0 || waitpid(pid, &status, 0) < 0 ||
            !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            printf("%s: spirv-val FAILED\n", s->name);
            failed++;
        }
    }
    unlink(path);
    printf("%d shaders, %d failed\n", smoe_vk_n_shaders, failed);
    return failed ? 1 : 0;
}
