/*
 * emu.cc - runs kernel launches of the emulated CUDA sources on the CPU (tests only; the model is described in
 * emu.h). Every thread of a block is a fiber with its own stack behind a guard page; the scheduler runs each
 * runnable fiber until it waits at a barrier or returns, releases a barrier once all its participants wait, and
 * fails the launch when nothing can run any more (a barrier that can never release). SMOE_EMU_ORDER=reverse runs
 * blocks and threads in the opposite order, a block's warps one after the other (reverse_order).
 *
 * Switching: on x86-64 a dozen instructions (callee-saved registers, MXCSR and the x87 control word, the stack
 * pointer): a model's decode does millions of warp barriers, and glibc's swapcontext makes a system call each time
 * (the signal mask), several times slower. Elsewhere, and under AddressSanitizer (which follows swapcontext, not a
 * hand-made switch), ucontext.
 *
 * The launch checks what the hardware checks: at most 1024 threads per block, no empty grid or block, grid.y and
 * grid.z at most 65535, dynamic shared memory at most 48 KiB unless the kernel opted in (cudaFuncSetAttribute) and
 * never above 64 KiB (Turing's limit, the smallest of the supported GPUs).
 */
#include "emu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define SMOE_EMU_ASM_SWITCH 1
/* smoe_emu_switch(&from_sp, to_sp): saves this context on its stack, stores the stack pointer in *from_sp and
 * continues the context saved at to_sp */
extern "C" void smoe_emu_switch(void **from_sp, void *to_sp);
asm(".text\n"
    ".globl smoe_emu_switch\n"
    ".type smoe_emu_switch,@function\n"
    "smoe_emu_switch:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  subq $8, %rsp\n"
    "  stmxcsr (%rsp)\n"
    "  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n"
    "  fldcw 4(%rsp)\n"
    "  addq $8, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size smoe_emu_switch, .-smoe_emu_switch\n");
#else
#define SMOE_EMU_ASM_SWITCH 0
#endif

thread_local uint3 threadIdx, blockIdx;
thread_local dim3  blockDim, gridDim;

namespace {

constexpr size_t kStack = 64 * 1024;
constexpr int    kMaxThreads = 1024;
constexpr size_t kMaxDynSmem = 64 * 1024, kDefaultDynSmem = 48 * 1024;

enum state { RUNNABLE, WAIT_BLOCK, WAIT_WARP, DONE };

struct fiber {
#if SMOE_EMU_ASM_SWITCH
    void *sp;
#else
    ucontext_t ctx;
#endif
    state       st;
    unsigned    n_xchg; /* shuffles so far: they alternate between two slot sets */
    uint3       tid;
    const char *what; /* the warp operation waited on */
};

struct emu {
    fiber         f[kMaxThreads];
    unsigned char slots[kMaxThreads / 32][2][32][16];
    unsigned char *stacks = nullptr; /* kMaxThreads stacks, each after a guard page */
    size_t         page = 4096;
#if SMOE_EMU_ASM_SWITCH
    void *sched_sp = nullptr;
#else
    ucontext_t sched;
#endif
    int            cur = -1; /* the fiber running */
    smoe_emu_fn    fn = nullptr;
    void          *ctx = nullptr;
    unsigned char *dyn = nullptr;
    size_t         dyn_cap = 0;
    cudaError_t    last = cudaSuccess;
    struct attr {
        const void *kernel;
        int         max_dyn;
    } attrs[256];
    int n_attrs = 0;
};

thread_local emu *E;

emu *get(void) {
    if (E) return E;
    E = new emu();
    E->page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t per = kStack + E->page;
    void *m = mmap(nullptr, per * kMaxThreads, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (m == MAP_FAILED) {
        fprintf(stderr, "cuda-emu: no memory for the fiber stacks\n");
        abort(); /* test harness only */
    }
    E->stacks = (unsigned char *)m;
    for (int i = 0; i < kMaxThreads; i++) mprotect(E->stacks + per * (size_t)i, E->page, PROT_NONE);
    return E;
}

void to_scheduler(fiber &f) {
#if SMOE_EMU_ASM_SWITCH
    smoe_emu_switch(&f.sp, E->sched_sp);
#else
    swapcontext(&f.ctx, &E->sched);
#endif
}

void to_fiber(fiber &f) {
#if SMOE_EMU_ASM_SWITCH
    smoe_emu_switch(&E->sched_sp, f.sp);
#else
    swapcontext(&E->sched, &f.ctx);
#endif
}

[[noreturn]] void entry(void) {
    E->fn(E->ctx);
    fiber &f = E->f[E->cur];
    f.st = DONE;
    to_scheduler(f); /* never resumed: the next block starts this stack afresh */
    abort();
}

/* a fresh fiber on the stack [lo, lo + size) that starts in entry() */
void start(fiber &f, unsigned char *lo, size_t size) {
#if SMOE_EMU_ASM_SWITCH
    /* the frame smoe_emu_switch pops: control words, r15..r12, rbx, rbp, then entry as the return address, at a
     * 16-byte boundary so that entry starts as if called (rsp = 8 mod 16) */
    uint64_t *top = (uint64_t *)((uintptr_t)(lo + size) & ~(uintptr_t)15) - 2;
    top[0] = (uint64_t)(uintptr_t)entry;
    uint64_t *sp = top - 7;
    for (int i = 1; i < 7; i++) sp[i] = 0;
    const uint32_t mxcsr = 0x1f80;  /* round to nearest, exceptions masked */
    const uint16_t fpucw = 0x037f;  /* the x87 default */
    memcpy(&sp[0], &mxcsr, 4);
    memcpy((unsigned char *)&sp[0] + 4, &fpucw, 2);
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = lo;
    f.ctx.uc_stack.ss_size = size;
    f.ctx.uc_link = &E->sched;
    makecontext(&f.ctx, (void (*)(void))entry, 0);
#endif
}

void wait(state s, const char *what) {
    fiber &f = E->f[E->cur];
    f.st = s;
    f.what = what;
    to_scheduler(f);
}

void describe(const char *kernel, int n) {
    fprintf(stderr, "cuda-emu: %s: block (%u,%u,%u) can not go on:", kernel, blockIdx.x, blockIdx.y, blockIdx.z);
    int shown = 0;
    for (int t = 0; t < n && shown < 8; t++) {
        const fiber &f = E->f[t];
        if (f.st == WAIT_BLOCK) fprintf(stderr, " thread %d waits in __syncthreads;", t), shown++;
        else if (f.st == WAIT_WARP) fprintf(stderr, " thread %d waits in %s;", t, f.what), shown++;
    }
    int done = 0;
    for (int t = 0; t < n; t++) done += E->f[t].st == DONE;
    fprintf(stderr, " %d of %d threads have returned\n", done, n);
}

/* SMOE_EMU_ORDER=reverse: blocks and, between barriers, threads run last first, and a block's warps one after the
 * other (the default interleaves them at every warp-wide operation). A kernel that reads what another thread writes
 * without a barrier between, or what another block writes, gets the value only in one of the two orders (on a GPU:
 * sometimes); the tests run in both. */
bool reverse_order(void) {
    static const int rev = [] {
        const char *v = getenv("SMOE_EMU_ORDER");
        return v && strcmp(v, "reverse") == 0;
    }();
    return rev != 0;
}

/* runs one block; false when it can not finish */
bool run_block(const char *kernel, int n) {
    const size_t per = kStack + E->page;
    for (int t = 0; t < n; t++) {
        fiber &f = E->f[t];
        f.st = RUNNABLE;
        f.n_xchg = 0;
        f.tid = uint3{t % blockDim.x, (t / blockDim.x) % blockDim.y, t / (blockDim.x * blockDim.y)};
        start(f, E->stacks + per * (size_t)t + E->page, kStack);
    }
    const int  n_warps = (n + 31) / 32;
    const auto run_thread = [](int t) {
        E->cur = t;
        threadIdx = E->f[t].tid;
        to_fiber(E->f[t]);
    };
    for (;;) {
        bool ran = false;
        if (!reverse_order()) {
            for (int t = 0; t < n; t++)
                if (E->f[t].st == RUNNABLE) run_thread(t), ran = true;
        } else {
            /* warp by warp, last first, each as far as it can go (to a __syncthreads or its end) before the next
             * starts: a warp that reads what another warp writes before their barrier reads it too early here */
            for (int w = n_warps - 1; w >= 0; w--) {
                const int t0 = 32 * w, t1 = t0 + 32 < n ? t0 + 32 : n;
                for (bool again = true; again;) {
                    again = false;
                    for (int t = t1 - 1; t >= t0; t--)
                        if (E->f[t].st == RUNNABLE) run_thread(t), ran = true, again = true;
                    bool all = true;
                    for (int t = t0; t < t1; t++) all &= E->f[t].st == WAIT_WARP;
                    if (all) {
                        for (int t = t0; t < t1; t++) E->f[t].st = RUNNABLE;
                        again = true;
                    }
                }
            }
        }
        E->cur = -1;
        int alive = 0, at_block = 0, done = 0;
        for (int t = 0; t < n; t++) {
            alive += E->f[t].st != DONE;
            done += E->f[t].st == DONE;
            at_block += E->f[t].st == WAIT_BLOCK;
        }
        if (alive == 0) return true;
        bool released = false;
        if (at_block == alive && done == 0) { /* a barrier some threads never reach (they returned) never releases */
            for (int t = 0; t < n; t++) E->f[t].st = RUNNABLE;
            released = true;
        }
        for (int w = 0; w < n_warps; w++) {
            const int t0 = 32 * w, t1 = t0 + 32 < n ? t0 + 32 : n;
            bool all = true;
            for (int t = t0; t < t1; t++) all &= E->f[t].st == WAIT_WARP;
            if (!all) continue;
            for (int t = t0; t < t1; t++) E->f[t].st = RUNNABLE;
            released = true;
        }
        if (!ran && !released) {
            describe(kernel, n);
            return false;
        }
    }
}

} // namespace

void smoe_emu_syncthreads(void) { wait(WAIT_BLOCK, "__syncthreads"); }

void smoe_emu_warp_sync(unsigned mask, const char *what) {
    if (mask != 0xffffffffu) {
        fprintf(stderr, "cuda-emu: %s with mask %#x: only full warps are modelled\n", what, mask);
        abort(); /* test harness only: a kernel the emulator can not run */
    }
    wait(WAIT_WARP, what);
}

/* The slot sets alternate: shuffle k writes set k % 2, waits until the warp has written, reads. A lane can write set
 * k % 2 again only at shuffle k + 2, after the barrier of shuffle k + 1, which every lane reaches after its read of
 * shuffle k: one barrier per shuffle is enough. */
void *smoe_emu_warp_slots(void) { return E->slots[E->cur / 32][E->f[E->cur].n_xchg++ & 1]; }

int smoe_emu_lane(void) { return E->cur % 32; }

void *smoe_emu_dyn_smem(void) { return E->dyn; }

cudaError_t smoe_emu_get_last_error(void) {
    emu *e = get();
    const cudaError_t r = e->last;
    e->last = cudaSuccess;
    return r;
}

cudaError_t smoe_emu_set_attribute(const void *kernel, int attr, int value) {
    emu *e = get();
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 || (size_t)value > kMaxDynSmem)
        return cudaErrorInvalidValue;
    for (int i = 0; i < e->n_attrs; i++)
        if (e->attrs[i].kernel == kernel) {
            e->attrs[i].max_dyn = value;
            return cudaSuccess;
        }
    if (e->n_attrs == 256) return cudaErrorInvalidValue;
    e->attrs[e->n_attrs++] = {kernel, value};
    return cudaSuccess;
}

cudaError_t smoe_emu_run(smoe_emu_fn fn, void *ctx, const void *kernel, const char *name, dim3 grid, dim3 block,
                         size_t smem) {
    emu *e = get();
    const unsigned long long n = (unsigned long long)block.x * block.y * block.z;
    size_t max_dyn = kDefaultDynSmem;
    for (int i = 0; i < e->n_attrs; i++)
        if (e->attrs[i].kernel == kernel) max_dyn = (size_t)e->attrs[i].max_dyn;
    cudaError_t r = cudaSuccess;
    if (n == 0 || n > kMaxThreads || block.z > 64 || grid.x == 0 || grid.y == 0 || grid.z == 0 || grid.y > 65535 ||
        grid.z > 65535) {
        fprintf(stderr, "cuda-emu: %s: invalid configuration grid (%u,%u,%u) block (%u,%u,%u)\n", name, grid.x, grid.y,
                grid.z, block.x, block.y, block.z);
        r = cudaErrorInvalidConfiguration;
    } else if (smem > max_dyn) {
        fprintf(stderr, "cuda-emu: %s: %zu bytes of dynamic shared memory, %zu allowed\n", name, smem, max_dyn);
        r = cudaErrorInvalidValue;
    }
    if (r != cudaSuccess) return e->last = r;
    if (smem > e->dyn_cap) {
        free(e->dyn);
        e->dyn = (unsigned char *)aligned_alloc(256, (smem + 255) / 256 * 256);
        e->dyn_cap = smem;
    }
    e->fn = fn;
    e->ctx = ctx;
    gridDim = grid;
    blockDim = block;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                blockIdx = reverse_order() ? uint3{grid.x - 1 - x, grid.y - 1 - y, grid.z - 1 - z} : uint3{x, y, z};
                if (smem) memset(e->dyn, 0xff, smem);
                if (!run_block(name, (int)n)) return e->last = cudaErrorLaunchFailure;
            }
    return cudaSuccess;
}
