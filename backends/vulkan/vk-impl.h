/*
 * vk-impl.h - the Vulkan backend's internals: the device context, device memory, the shader/pipeline table and
 * the dispatch recorder. Files: vk-device.c (instance, device, memory, transfers, sync), vk-pipelines.c (shader
 * table, pipelines, descriptors, recording), vk-ops.c (supports_op and one recorder per op), vk-backend.c (vtable,
 * registry entry points), vk-shaders.c (the embedded SPIR-V, generated table).
 *
 * Memory model: a smoe_buffer is one VkDeviceMemory with one VkBuffer over all of it (so it is limited by
 * maxMemoryAllocationSize and maxBufferSize: props.max_buffer_size tells loaders). Its `base` is an opaque address
 * (never dereferenced): a tensor's byte offset in its buffer is t->data - buffer->base. Shaders see windows of a
 * buffer: a binding covers at most ctx->max_range bytes (maxStorageBufferRange, or less with SMOE_VK_MAX_BINDING),
 * starting at a multiple of minStorageBufferOffsetAlignment; weights larger than a window are processed by several
 * dispatches (vk-ops.c).
 *
 * Threads: like every backend, one thread at a time. Work is recorded into one command buffer per compute() and
 * submitted with a fence; transfers wait for pending work first, so the order of calls is the order of effects.
 */
#ifndef SMOE_VK_IMPL_H
#define SMOE_VK_IMPL_H

#include "core/backend-impl.h"
#include "vk-backend.h"

#include <vulkan/vulkan.h>

#define SMOE_VK_BINDINGS       8 /* storage buffers per pipeline (one descriptor set layout for all) */
#define SMOE_VK_STATUS_BINDING 7 /* the status word (types.glsl) */
#define SMOE_VK_PUSH_SIZE      128
#define SMOE_VK_MAX_SPECS      16 /* pipelines per shader (distinct specialization constants) */
#define SMOE_VK_MM_COLS_DEFAULT 16 /* activation columns from which products run tiled (vk-ops.c, use_mm) */

/* Device capabilities the shaders are chosen by (each can be turned off with SMOE_VK_DISABLE, see vk-device.c). */
typedef struct smoe_vk_caps {
    bool storage16;   /* storageBuffer16BitAccess */
    bool subgroup;    /* subgroup basic + arithmetic in compute */
    bool float64;     /* shaderFloat64 (ROPE angles) */
    bool push_desc;   /* VK_KHR_push_descriptor */
    bool int_dot;     /* shaderIntegerDotProduct */
    bool fast;        /* storage16 && subgroup: the shaders without the "_compat" suffix */
} smoe_vk_caps;

/* One allocation: memory, a buffer over all of it, and its host mapping when it is mappable. */
typedef struct smoe_vk_mem {
    VkBuffer       buffer;
    VkDeviceMemory memory;
    VkDeviceSize   size;   /* bytes (a multiple of 4) */
    void          *mapped; /* host pointer to byte 0, or NULL */
} smoe_vk_mem;

/* A recorded dispatch as data (vk-pipelines.c keeps the log of a compute and replays an earlier command buffer
 * whose log is identical). Zero-filled before its fields are set, so equal dispatches are equal byte for byte. */
struct smoe_vk_binding;
typedef struct smoe_vk_replay smoe_vk_replay;

typedef struct smoe_vk_pipe {
    uint32_t   spec[4];
    VkPipeline pipeline;
} smoe_vk_pipe;

/* Embedded SPIR-V (vk-shaders.c, generated from backends/vulkan/meson.build). */
typedef struct smoe_vk_shader {
    const char     *name; /* "mul_mv_q4_0", "mul_mv_q4_0_compat", ... */
    const uint32_t *code;
    size_t          size; /* bytes */
} smoe_vk_shader;

extern const smoe_vk_shader smoe_vk_shaders[];
extern const int            smoe_vk_n_shaders;

/* Kernels (shader families); the shader for (kernel, types) is found by name once and cached. */
typedef enum smoe_vk_kernel {
    SMOE_VK_GET_ROWS,
    SMOE_VK_MUL_MV,
    SMOE_VK_MUL_MV_ID,
    SMOE_VK_MOE_SORT,
    SMOE_VK_ATTENTION,
    SMOE_VK_CPY,
    SMOE_VK_RMS_NORM,
    SMOE_VK_ROPE,
    SMOE_VK_ELTWISE,
    SMOE_VK_MOE_ROUTE,
    SMOE_VK_MOE_COMBINE,
    SMOE_VK_MUL_MVQ,
    SMOE_VK_MUL_MVQ_ID,
    SMOE_VK_QUANTIZE_Q8,
    SMOE_VK_ATTN_COMBINE,
    SMOE_VK_MUL_MM,
    SMOE_VK_MUL_MM_ID,
    SMOE_VK_KERNEL_COUNT
} smoe_vk_kernel;

/* Error codes written by shaders into the status word: (node index in the split + 1) << 2 | kind. */
enum { SMOE_VK_ERR_ROW_ID = 1, SMOE_VK_ERR_EXPERT_ID = 2, SMOE_VK_ERR_CELL = 3 };

typedef struct smoe_vk_node_info {
    char     name[SMOE_MAX_NAME];
    smoe_op  op;
    int64_t  bound; /* the exclusive upper bound the reported index violated */
} smoe_vk_node_info;

typedef struct smoe_vk_ctx {
    /* instance and device */
    VkInstance               instance;
    VkDebugUtilsMessengerEXT messenger;
    VkPhysicalDevice         phys;
    VkDevice                 device;
    VkQueue                  queue;
    uint32_t                 queue_family;
    int                      device_index;
    char                     name[32];
    char                     description[256];
    char                     features[64]; /* smoe_vk_backend_features */
    VkPhysicalDeviceProperties       props;
    VkPhysicalDeviceMemoryProperties mem_props;
    smoe_vk_caps             caps;
    bool                     uma;          /* device memory is host memory (integrated GPU, lavapipe) */
    bool                     force_staging;
    bool                     cpu_tuning;   /* workgroup shapes for CPU devices (lavapipe); SMOE_VK_TUNE=cpu|gpu */
    uint32_t                 mm_min_cols;  /* tiled products from this many columns (SMOE_VK_MM_COLS; UINT32_MAX: never) */

    /* limits */
    VkDeviceSize max_range;     /* usable bytes of one binding */
    VkDeviceSize min_align;     /* minStorageBufferOffsetAlignment */
    VkDeviceSize max_alloc;     /* largest buffer we allocate */
    uint32_t     max_groups[3];
    uint32_t     max_wg;        /* maxComputeWorkGroupInvocations */
    uint32_t     max_shared;    /* maxComputeSharedMemorySize (bytes) */
    uint32_t     subgroup_size;
    uint32_t     mem_type_device;  /* index of the memory type for device buffers */
    uint32_t     mem_type_staging; /* host-visible, coherent */

    /* command submission */
    VkCommandPool   cmd_pool;
    VkCommandBuffer cmd;      /* compute: one per compute() */
    VkCommandBuffer cmd_xfer; /* copies through the staging buffer */
    VkFence         fence, fence_xfer;
    bool            pending;  /* cmd submitted and not yet waited for */
    uint32_t        n_dispatch; /* dispatches recorded into cmd */
    uint32_t        n_barriers; /* barriers recorded into cmd (between dispatches) */
    struct smoe_vk_logged *log; /* this compute's dispatches */
    int                    n_log, cap_log;
    smoe_vk_replay        *replays; /* SMOE_VK_REPLAYS recorded command buffers with their logs */
    smoe_vk_replay        *last_replay; /* the entry the last submit used (NULL: recorded into cmd, not kept) */
    const struct smoe_split *last_split; /* the split the last compute ran (NULL: none or failed) and its stamp */
    uint64_t               last_stamp;
    uint64_t               replay_tick;
    uint64_t               n_replayed, n_recorded; /* computes submitted from the cache / recorded */
    struct smoe_vk_binding *touched; /* windows touched since the last barrier */
    int                     n_touched, cap_touched;

    /* pipelines and descriptors */
    PFN_vkCmdPushDescriptorSetKHR cmd_push_descriptor;
    VkDescriptorSetLayout dsl;
    VkPipelineLayout      pipeline_layout;
    smoe_vk_pipe        (*pipes)[SMOE_VK_MAX_SPECS]; /* [smoe_vk_n_shaders] */
    int16_t              *shader_cache;               /* [KERNEL][type][type]: shader index, -1 absent, -2 unknown */
    VkDescriptorPool     *pools;  /* without push descriptors: sets are taken in order per compute() */
    int                   n_pools;
    VkDescriptorSet      *sets;
    uint32_t              n_sets;

    /* memory owned by the backend */
    smoe_vk_mem staging; /* host-visible staging for uploads and downloads */
    smoe_vk_mem status;  /* host-visible: status word */
    smoe_vk_mem dummy;   /* bound to unused bindings */
    smoe_vk_mem scratch; /* device scratch, grown before recording: [MUL_MAT_ID chunk tables][int8 activations] */
    VkDeviceSize scratch_q8_off;        /* bytes: where the int8 activations start (after the largest table) */
    bool               no_q8;           /* this compute's tables and int8 activations would not fit one binding */
    const smoe_tensor *q8_src;          /* activations already in the int8 area during this compute, or NULL */
    const void        *q8_src_data;
    uint64_t    next_base; /* opaque base addresses handed to buffers */

    /* per compute(): what a status code refers to */
    smoe_vk_node_info *node_info;
    int                node_info_cap;

    /* validation layer messages (SMOE_VK_VALIDATION=1) */
    int  n_validation_msgs;
    int  n_validation_reported; /* returned as errors by smoe_vk_wait */
    char first_validation_msg[512];
} smoe_vk_ctx;

/* "VK_ERROR_OUT_OF_DEVICE_MEMORY" */
const char *smoe_vk_result_name(VkResult r);
/* Maps a failed VkResult to SMOE_ERR_OUT_OF_MEMORY / SMOE_ERR_DEVICE with a message "vulkan: <what>: <name>". */
smoe_status smoe_vk_error(VkResult r, const char *what);

#define SMOE_VK_TRY(call, what)                                                                                        \
    do {                                                                                                               \
        VkResult smoe_vk_r_ = (call);                                                                                  \
        if (smoe_vk_r_ != VK_SUCCESS) return smoe_vk_error(smoe_vk_r_, (what));                                       \
    } while (0)

/* ---- vk-device.c ---- */

smoe_status smoe_vk_ctx_init(smoe_vk_ctx *c, int device);
void        smoe_vk_ctx_destroy(smoe_vk_ctx *c);

/* Allocations: usage storage | transfer src/dst. host = true: host-visible coherent (mapped), else device-local. */
smoe_status smoe_vk_mem_alloc(smoe_vk_ctx *c, VkDeviceSize size, bool host, smoe_vk_mem *m);
void        smoe_vk_mem_free(smoe_vk_ctx *c, smoe_vk_mem *m);

/* Waits for the submitted compute (if any) and turns a status word into an error. */
smoe_status smoe_vk_wait(smoe_vk_ctx *c);
/* Blocking copies between host memory and bytes [off, off + size) of m (mapped directly when the device memory
 * is host memory, else through the staging buffer). */
smoe_status smoe_vk_write(smoe_vk_ctx *c, smoe_vk_mem *m, VkDeviceSize off, const void *src, size_t size);
smoe_status smoe_vk_read(smoe_vk_ctx *c, smoe_vk_mem *m, VkDeviceSize off, void *dst, size_t size);
smoe_status smoe_vk_fill(smoe_vk_ctx *c, smoe_vk_mem *m, uint8_t value);
/* Makes sure the scratch buffer has `size` bytes (only between computes). */
smoe_status smoe_vk_scratch_reserve(smoe_vk_ctx *c, VkDeviceSize size);

/* ---- vk-pipelines.c ---- */

smoe_status smoe_vk_pipelines_init(smoe_vk_ctx *c);
void        smoe_vk_pipelines_destroy(smoe_vk_ctx *c);
/* The shader for a kernel and its types (t2 only for CPY: the destination type; else 0), with the variant suffix
 * the device's caps call for; -1 if none was built. */
int smoe_vk_shader_for(smoe_vk_ctx *c, smoe_vk_kernel k, smoe_type t1, smoe_type t2);

/* A window of a buffer bound to one binding: exactly the bytes the dispatch may touch (the recorder binds tight
 * windows), and whether it writes them. smoe_vk_record puts a barrier before a dispatch only when one of its windows
 * overlaps a window written since the last barrier, or it writes a window read since then. */
typedef struct smoe_vk_binding {
    VkBuffer     buffer;
    VkDeviceSize offset, range;
    bool         write;
} smoe_vk_binding;

typedef struct smoe_vk_dispatch {
    int             shader;
    uint32_t        spec[4]; /* workgroup size, kernel constants 1..3 (0 where the kernel has none) */
    smoe_vk_binding bind[SMOE_VK_BINDINGS];
    const void     *push;
    uint32_t        push_size;
    uint32_t        groups[3];
} smoe_vk_dispatch;

typedef struct smoe_vk_logged {
    smoe_vk_binding bind[SMOE_VK_BINDINGS];
    int32_t         shader;
    uint32_t        spec[4], groups[3], push_size;
    uint8_t         push[SMOE_VK_PUSH_SIZE];
} smoe_vk_logged;

#define SMOE_VK_REPLAYS 4
struct smoe_vk_replay {
    VkCommandBuffer cmd;
    smoe_vk_logged *log;
    int             n, cap;
    uint64_t        last_used;
    bool            valid;
};

/* Forgets every recorded command buffer (a buffer they reference is being destroyed). */
void smoe_vk_replays_invalidate(smoe_vk_ctx *c);

/* Starts a compute's log (after waiting for the previous compute). */
smoe_status smoe_vk_begin(smoe_vk_ctx *c);
/* Adds one dispatch (its pipeline is created now if needed). Unset bindings get the dummy buffer; binding 7 the
 * status word. */
smoe_status smoe_vk_record(smoe_vk_ctx *c, const smoe_vk_dispatch *d);
/* Submits the log: replays a recorded command buffer with an identical log, else records one (c->pending). */
smoe_status smoe_vk_submit(smoe_vk_ctx *c);
/* Submits r's command buffer again, without a log (the caller knows its log would be r's), after waiting for the
 * previous compute; false when r no longer holds one (invalidated). */
smoe_status smoe_vk_resubmit(smoe_vk_ctx *c, smoe_vk_replay *r, bool *done);

/* ---- vk-ops.c ---- */

bool        smoe_vk_supports_op(smoe_vk_ctx *c, const smoe_tensor *node);
/* Scratch bytes the node needs (reserved before recording): MUL_MAT_ID chunk tables, int8 activations. */
void        smoe_vk_op_scratch(smoe_vk_ctx *c, const smoe_tensor *node, size_t *table_bytes, size_t *q8_bytes);
/* Records the node's dispatches; `index` is its position in the split (for status codes). */
smoe_status smoe_vk_record_op(smoe_vk_ctx *c, const smoe_tensor *node, int index);

/* ---- vk-backend.c: see vk-backend.h ---- */

#endif /* SMOE_VK_IMPL_H */
