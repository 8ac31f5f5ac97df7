/*
 * vk-pipelines.c - the shader table, pipelines, descriptors and the dispatch recorder.
 *
 * Shaders: backends/vulkan/meson.build compiles every (kernel, type, variant) to SPIR-V and generates the table
 * smoe_vk_shaders[] (vk-shaders.c); names are "<kernel>[_<type>[_<type>]][<suffix>]", suffix "_compat" for the
 * variants that need neither 16-bit storage nor subgroup arithmetic, "_f64" for the double-precision ROPE. The name
 * for (kernel, types) is looked up once and cached.
 * Pipelines: created on first use, once per (shader, specialization constants), and kept until the backend is
 * freed. All pipelines share one descriptor set layout (SMOE_VK_BINDINGS storage buffers) and one 128-byte push
 * constant range.
 * Descriptors: pushed with VK_KHR_push_descriptor where the device has it; otherwise the n-th dispatch of a compute
 * uses the n-th set of a list allocated once and grown only when a larger split comes (never per run).
 */
#include "vk-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* kernel name, number of type parameters, whether it has "_compat" variants, whether it has "_f64" variants */
static const struct {
    const char *name;
    int         n_types;
    bool        compat;
    bool        f64;
} kernels[SMOE_VK_KERNEL_COUNT] = {
    [SMOE_VK_GET_ROWS] = {"get_rows", 1, true, false},
    [SMOE_VK_MUL_MV] = {"mul_mv", 1, true, false},
    [SMOE_VK_MUL_MV_ID] = {"mul_mv_id", 1, true, false},
    [SMOE_VK_MOE_SORT] = {"moe_sort", 0, false, false},
    [SMOE_VK_ATTENTION] = {"attention", 1, true, false},
    [SMOE_VK_CPY] = {"cpy", 2, true, false},
    [SMOE_VK_RMS_NORM] = {"rms_norm", 0, true, false},
    [SMOE_VK_ROPE] = {"rope", 0, false, true},
    [SMOE_VK_ELTWISE] = {"eltwise", 0, false, false},
    [SMOE_VK_MOE_ROUTE] = {"moe_route", 0, false, false},
    [SMOE_VK_MOE_COMBINE] = {"moe_combine", 0, false, false},
    [SMOE_VK_MUL_MVQ] = {"mul_mvq", 1, true, false},
    [SMOE_VK_MUL_MVQ_ID] = {"mul_mvq_id", 1, true, false},
    [SMOE_VK_QUANTIZE_Q8] = {"quantize_q8", 0, false, false},
    [SMOE_VK_ATTN_COMBINE] = {"attention_combine", 0, false, false},
    [SMOE_VK_MUL_MM] = {"mul_mm", 1, true, false},
    [SMOE_VK_MUL_MM_ID] = {"mul_mm_id", 1, true, false},
};

#define CACHE_INDEX(k, t1, t2) (((size_t)(k) * SMOE_TYPE_COUNT + (size_t)(t1)) * SMOE_TYPE_COUNT + (size_t)(t2))

int smoe_vk_shader_for(smoe_vk_ctx *c, smoe_vk_kernel k, smoe_type t1, smoe_type t2) {
    if ((int)k < 0 || k >= SMOE_VK_KERNEL_COUNT || (int)t1 < 0 || t1 >= SMOE_TYPE_COUNT || (int)t2 < 0 ||
        t2 >= SMOE_TYPE_COUNT)
        return -1;
    if (kernels[k].n_types < 2) t2 = 0;
    if (kernels[k].n_types < 1) t1 = 0;
    int16_t *slot = &c->shader_cache[CACHE_INDEX(k, t1, t2)];
    if (*slot != -2) return *slot;
    char name[96];
    int n = snprintf(name, sizeof(name), "%s", kernels[k].name);
    if (kernels[k].n_types >= 1) n += snprintf(name + n, sizeof(name) - (size_t)n, "_%s", smoe_type_name(t1));
    if (kernels[k].n_types >= 2) n += snprintf(name + n, sizeof(name) - (size_t)n, "_%s", smoe_type_name(t2));
    if (kernels[k].compat && !c->caps.fast) n += snprintf(name + n, sizeof(name) - (size_t)n, "_compat");
    if (kernels[k].f64 && c->caps.float64) snprintf(name + n, sizeof(name) - (size_t)n, "_f64");
    *slot = -1;
    for (int i = 0; i < smoe_vk_n_shaders; i++)
        if (strcmp(smoe_vk_shaders[i].name, name) == 0) *slot = (int16_t)i;
    return *slot;
}

/* ---- init / destroy ---- */

smoe_status smoe_vk_pipelines_init(smoe_vk_ctx *c) {
    const size_t n_cache = (size_t)SMOE_VK_KERNEL_COUNT * SMOE_TYPE_COUNT * SMOE_TYPE_COUNT;
    c->shader_cache = malloc(n_cache * sizeof(*c->shader_cache));
    c->pipes = calloc((size_t)smoe_vk_n_shaders, sizeof(*c->pipes));
    SMOE_RETURN_IF(!c->shader_cache || !c->pipes, SMOE_ERR_OUT_OF_MEMORY, "vulkan: out of memory");
    for (size_t i = 0; i < n_cache; i++) c->shader_cache[i] = -2;
    c->replays = calloc(SMOE_VK_REPLAYS, sizeof(*c->replays));
    SMOE_RETURN_IF(!c->replays, SMOE_ERR_OUT_OF_MEMORY, "vulkan: out of memory");
    if (c->caps.push_desc) {
        c->cmd_push_descriptor =
            (PFN_vkCmdPushDescriptorSetKHR)vkGetDeviceProcAddr(c->device, "vkCmdPushDescriptorSetKHR");
        if (!c->cmd_push_descriptor) c->caps.push_desc = false; /* fall back to descriptor sets */
    }

    VkDescriptorSetLayoutBinding b[SMOE_VK_BINDINGS];
    for (uint32_t i = 0; i < SMOE_VK_BINDINGS; i++)
        b[i] = (VkDescriptorSetLayoutBinding){.binding = i,
                                              .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                              .descriptorCount = 1,
                                              .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT};
    VkDescriptorSetLayoutCreateInfo li = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
                                          .flags = c->caps.push_desc
                                                       ? VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR
                                                       : 0,
                                          .bindingCount = SMOE_VK_BINDINGS,
                                          .pBindings = b};
    SMOE_VK_TRY(vkCreateDescriptorSetLayout(c->device, &li, NULL, &c->dsl), "vkCreateDescriptorSetLayout");
    VkPushConstantRange pr = {.stageFlags = VK_SHADER_STAGE_COMPUTE_BIT, .offset = 0, .size = SMOE_VK_PUSH_SIZE};
    VkPipelineLayoutCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
                                     .setLayoutCount = 1,
                                     .pSetLayouts = &c->dsl,
                                     .pushConstantRangeCount = 1,
                                     .pPushConstantRanges = &pr};
    SMOE_VK_TRY(vkCreatePipelineLayout(c->device, &pi, NULL, &c->pipeline_layout), "vkCreatePipelineLayout");
    return SMOE_OK;
}

void smoe_vk_pipelines_destroy(smoe_vk_ctx *c) {
    if (c->pipes) {
        for (int i = 0; i < smoe_vk_n_shaders; i++)
            for (int j = 0; j < SMOE_VK_MAX_SPECS; j++)
                if (c->pipes[i][j].pipeline) vkDestroyPipeline(c->device, c->pipes[i][j].pipeline, NULL);
        free(c->pipes);
        c->pipes = NULL;
    }
    for (int i = 0; i < c->n_pools; i++) vkDestroyDescriptorPool(c->device, c->pools[i], NULL);
    free(c->pools);
    free(c->sets);
    c->pools = NULL;
    c->sets = NULL;
    c->n_pools = 0;
    c->n_sets = 0;
    if (c->pipeline_layout) vkDestroyPipelineLayout(c->device, c->pipeline_layout, NULL);
    if (c->dsl) vkDestroyDescriptorSetLayout(c->device, c->dsl, NULL);
    c->pipeline_layout = VK_NULL_HANDLE;
    c->dsl = VK_NULL_HANDLE;
    free(c->shader_cache);
    c->shader_cache = NULL;
    free(c->touched);
    c->touched = NULL;
    c->n_touched = c->cap_touched = 0;
    if (c->replays) {
        for (int i = 0; i < SMOE_VK_REPLAYS; i++) {
            if (c->replays[i].cmd) vkFreeCommandBuffers(c->device, c->cmd_pool, 1, &c->replays[i].cmd);
            free(c->replays[i].log);
        }
        free(c->replays);
        c->replays = NULL;
    }
    free(c->log);
    c->log = NULL;
    c->n_log = c->cap_log = 0;
}

/* ---- pipelines ---- */

static smoe_status get_pipeline(smoe_vk_ctx *c, int shader, const uint32_t spec[4], VkPipeline *out) {
    SMOE_RETURN_IF(shader < 0 || shader >= smoe_vk_n_shaders, SMOE_ERR_UNSUPPORTED, "vulkan: no such shader");
    smoe_vk_pipe *slots = c->pipes[shader];
    int free_slot = -1;
    for (int j = 0; j < SMOE_VK_MAX_SPECS; j++) {
        if (!slots[j].pipeline) {
            if (free_slot < 0) free_slot = j;
            continue;
        }
        if (memcmp(slots[j].spec, spec, sizeof(slots[j].spec)) == 0) {
            *out = slots[j].pipeline;
            return SMOE_OK;
        }
    }
    const smoe_vk_shader *sh = &smoe_vk_shaders[shader];
    SMOE_RETURN_IF(free_slot < 0, SMOE_ERR_UNSUPPORTED,
                   "vulkan: shader %s: more than %d specializations (internal)", sh->name, SMOE_VK_MAX_SPECS);
    VkShaderModuleCreateInfo mi = {
        .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO, .codeSize = sh->size, .pCode = sh->code};
    VkShaderModule mod;
    SMOE_VK_TRY(vkCreateShaderModule(c->device, &mi, NULL, &mod), sh->name);
    /* entries for constants a shader does not declare are ignored (Vulkan: VkSpecializationInfo) */
    const VkSpecializationMapEntry entries[4] = {
        {.constantID = 0, .offset = 0, .size = 4},
        {.constantID = 1, .offset = 4, .size = 4},
        {.constantID = 2, .offset = 8, .size = 4},
        {.constantID = 3, .offset = 12, .size = 4},
    };
    VkSpecializationInfo si = {.mapEntryCount = 4, .pMapEntries = entries, .dataSize = 16, .pData = spec};
    VkComputePipelineCreateInfo ci = {
        .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
        .stage = {.sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
                  .stage = VK_SHADER_STAGE_COMPUTE_BIT,
                  .module = mod,
                  .pName = "main",
                  .pSpecializationInfo = &si},
        .layout = c->pipeline_layout};
    VkPipeline p = VK_NULL_HANDLE;
    VkResult r = vkCreateComputePipelines(c->device, VK_NULL_HANDLE, 1, &ci, NULL, &p);
    vkDestroyShaderModule(c->device, mod, NULL);
    if (r != VK_SUCCESS) {
        char what[128];
        snprintf(what, sizeof(what), "creating the pipeline for %s", sh->name);
        return smoe_vk_error(r, what);
    }
    memcpy(slots[free_slot].spec, spec, sizeof(slots[free_slot].spec));
    slots[free_slot].pipeline = p;
    *out = p;
    return SMOE_OK;
}

/* ---- descriptor sets (without push descriptors) ---- */

static smoe_status grow_sets(smoe_vk_ctx *c) {
    const uint32_t add = c->n_sets < 256 ? 256 : c->n_sets;
    VkDescriptorPoolSize ps = {.type = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER, .descriptorCount = add * SMOE_VK_BINDINGS};
    VkDescriptorPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_POOL_CREATE_INFO,
                                     .maxSets = add,
                                     .poolSizeCount = 1,
                                     .pPoolSizes = &ps};
    VkDescriptorPool pool;
    SMOE_VK_TRY(vkCreateDescriptorPool(c->device, &pi, NULL, &pool), "vkCreateDescriptorPool");
    VkDescriptorPool *pools = realloc(c->pools, (size_t)(c->n_pools + 1) * sizeof(*pools));
    VkDescriptorSet *sets = pools ? realloc(c->sets, (size_t)(c->n_sets + add) * sizeof(*sets)) : NULL;
    VkDescriptorSetLayout *layouts = calloc(add, sizeof(*layouts));
    if (pools) c->pools = pools;
    if (sets) c->sets = sets;
    if (!pools || !sets || !layouts) {
        free(layouts);
        vkDestroyDescriptorPool(c->device, pool, NULL);
        return smoe_set_error(SMOE_ERR_OUT_OF_MEMORY, "vulkan: out of memory");
    }
    c->pools[c->n_pools++] = pool;
    for (uint32_t i = 0; i < add; i++) layouts[i] = c->dsl;
    VkDescriptorSetAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_ALLOCATE_INFO,
                                      .descriptorPool = pool,
                                      .descriptorSetCount = add,
                                      .pSetLayouts = layouts};
    VkResult r = vkAllocateDescriptorSets(c->device, &ai, c->sets + c->n_sets);
    free(layouts);
    SMOE_VK_TRY(r, "vkAllocateDescriptorSets");
    c->n_sets += add;
    return SMOE_OK;
}

/* ---- recording ---- */

static void barrier(VkCommandBuffer cmd, VkPipelineStageFlags src, VkAccessFlags src_access, VkPipelineStageFlags dst,
                    VkAccessFlags dst_access) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER, .srcAccessMask = src_access,
                          .dstAccessMask = dst_access};
    vkCmdPipelineBarrier(cmd, src, dst, 0, 1, &mb, 0, NULL, 0, NULL);
}

smoe_status smoe_vk_begin(smoe_vk_ctx *c) {
    SMOE_TRY(smoe_vk_wait(c));
    c->n_log = 0;
    return SMOE_OK;
}

/* Whether dispatch d must wait for the dispatches recorded since the last barrier: a read or write of a window
 * written by them (RAW, WAW), or a write of a window they read (WAR). The status word is only touched by atomics. */
static bool needs_barrier(const smoe_vk_ctx *c, const smoe_vk_logged *d) {
    for (int i = 0; i < SMOE_VK_BINDINGS; i++) {
        const smoe_vk_binding *b = &d->bind[i];
        if (i == SMOE_VK_STATUS_BINDING || !b->buffer) continue;
        for (int j = 0; j < c->n_touched; j++) {
            const smoe_vk_binding *p = &c->touched[j];
            if (p->buffer != b->buffer || !(p->write || b->write)) continue;
            if (b->offset < p->offset + p->range && p->offset < b->offset + b->range) return true;
        }
    }
    return false;
}

static smoe_status add_touched(smoe_vk_ctx *c, const smoe_vk_logged *d) {
    for (int i = 0; i < SMOE_VK_BINDINGS; i++) {
        if (i == SMOE_VK_STATUS_BINDING || !d->bind[i].buffer) continue;
        if (c->n_touched == c->cap_touched) {
            const int cap = c->cap_touched ? 2 * c->cap_touched : 64;
            smoe_vk_binding *p = realloc(c->touched, (size_t)cap * sizeof(*p));
            SMOE_RETURN_IF(!p, SMOE_ERR_OUT_OF_MEMORY, "vulkan: out of memory");
            c->touched = p;
            c->cap_touched = cap;
        }
        c->touched[c->n_touched++] = d->bind[i];
    }
    return SMOE_OK;
}

smoe_status smoe_vk_record(smoe_vk_ctx *c, const smoe_vk_dispatch *d) {
    VkPipeline pipe = VK_NULL_HANDLE;
    SMOE_TRY(get_pipeline(c, d->shader, d->spec, &pipe));
    for (int i = 0; i < 3; i++)
        SMOE_RETURN_IF(d->groups[i] == 0 || d->groups[i] > c->max_groups[i], SMOE_ERR_UNSUPPORTED,
                       "vulkan: %s: %u workgroups in dimension %d (limit %u)", smoe_vk_shaders[d->shader].name,
                       d->groups[i], i, c->max_groups[i]);
    SMOE_RETURN_IF(d->push_size > SMOE_VK_PUSH_SIZE, SMOE_ERR_UNSUPPORTED, "vulkan: push constants too large");
    if (c->n_log == c->cap_log) {
        const int cap = c->cap_log ? 2 * c->cap_log : 256;
        smoe_vk_logged *l = realloc(c->log, (size_t)cap * sizeof(*l));
        SMOE_RETURN_IF(!l, SMOE_ERR_OUT_OF_MEMORY, "vulkan: out of memory");
        c->log = l;
        c->cap_log = cap;
    }
    smoe_vk_logged *e = &c->log[c->n_log++];
    memset(e, 0, sizeof(*e));
    for (int i = 0; i < SMOE_VK_BINDINGS; i++) {
        if (i == SMOE_VK_STATUS_BINDING || !d->bind[i].buffer) continue;
        e->bind[i].buffer = d->bind[i].buffer;
        e->bind[i].offset = d->bind[i].offset;
        e->bind[i].range = d->bind[i].range;
        e->bind[i].write = d->bind[i].write;
    }
    e->shader = d->shader;
    memcpy(e->spec, d->spec, sizeof(e->spec));
    memcpy(e->groups, d->groups, sizeof(e->groups));
    e->push_size = d->push_size;
    if (d->push_size) memcpy(e->push, d->push, d->push_size);
    return SMOE_OK;
}

/* Records the log into cmd: a barrier first (earlier submissions and copies), the dispatches with a barrier where
 * needs_barrier says, a barrier for the host and copies at the end. */
static smoe_status record_log(smoe_vk_ctx *c, VkCommandBuffer cmd, bool one_time) {
    SMOE_VK_TRY(vkResetCommandBuffer(cmd, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = one_time ? VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT : 0};
    SMOE_VK_TRY(vkBeginCommandBuffer(cmd, &bi), "vkBeginCommandBuffer");
    barrier(cmd, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_ACCESS_MEMORY_WRITE_BIT, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT,
            VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
    c->n_dispatch = 0;
    c->n_barriers = 0;
    c->n_touched = 0;
    for (int k = 0; k < c->n_log; k++) {
        const smoe_vk_logged *d = &c->log[k];
        VkPipeline pipe = VK_NULL_HANDLE;
        SMOE_TRY(get_pipeline(c, d->shader, d->spec, &pipe));
        if (needs_barrier(c, d)) {
            barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_SHADER_READ_BIT,
                    VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT);
            c->n_touched = 0;
            c->n_barriers++;
        }
        SMOE_TRY(add_touched(c, d));
        vkCmdBindPipeline(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, pipe);

        VkDescriptorBufferInfo info[SMOE_VK_BINDINGS];
        VkWriteDescriptorSet w[SMOE_VK_BINDINGS];
        for (uint32_t i = 0; i < SMOE_VK_BINDINGS; i++) {
            const smoe_vk_binding *b = &d->bind[i];
            if (i == SMOE_VK_STATUS_BINDING) info[i] = (VkDescriptorBufferInfo){c->status.buffer, 0, c->status.size};
            else if (b->buffer) info[i] = (VkDescriptorBufferInfo){b->buffer, b->offset, b->range};
            else info[i] = (VkDescriptorBufferInfo){c->dummy.buffer, 0, c->dummy.size};
            w[i] = (VkWriteDescriptorSet){.sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
                                          .dstBinding = i,
                                          .descriptorCount = 1,
                                          .descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
                                          .pBufferInfo = &info[i]};
        }
        if (c->caps.push_desc) {
            c->cmd_push_descriptor(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipeline_layout, 0, SMOE_VK_BINDINGS, w);
        } else {
            if (c->n_dispatch >= c->n_sets) SMOE_TRY(grow_sets(c));
            VkDescriptorSet set = c->sets[c->n_dispatch];
            for (uint32_t i = 0; i < SMOE_VK_BINDINGS; i++) w[i].dstSet = set;
            vkUpdateDescriptorSets(c->device, SMOE_VK_BINDINGS, w, 0, NULL);
            vkCmdBindDescriptorSets(cmd, VK_PIPELINE_BIND_POINT_COMPUTE, c->pipeline_layout, 0, 1, &set, 0, NULL);
        }
        if (d->push_size)
            vkCmdPushConstants(cmd, c->pipeline_layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, d->push_size, d->push);
        vkCmdDispatch(cmd, d->groups[0], d->groups[1], d->groups[2]);
        c->n_dispatch++;
    }
    barrier(cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT, VK_ACCESS_SHADER_WRITE_BIT,
            VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
            VK_ACCESS_HOST_READ_BIT | VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT);
    SMOE_VK_TRY(vkEndCommandBuffer(cmd), "vkEndCommandBuffer");
    return SMOE_OK;
}

void smoe_vk_replays_invalidate(smoe_vk_ctx *c) {
    if (!c->replays) return;
    for (int i = 0; i < SMOE_VK_REPLAYS; i++) c->replays[i].valid = false;
}

/* The command buffer for the current log. With push descriptors a recorded command buffer holds everything it
 * needs, so the last few are kept with their logs and one with an identical log is submitted again: a graph run
 * (e.g. one decode step) then costs no recording at all. With descriptor sets, which are shared, every compute is
 * recorded. */
static smoe_status command_buffer_for_log(smoe_vk_ctx *c, VkCommandBuffer *out) {
    if (!c->caps.push_desc || !c->replays) {
        SMOE_TRY(record_log(c, c->cmd, true));
        c->n_recorded++;
        *out = c->cmd;
        return SMOE_OK;
    }
    smoe_vk_replay *victim = NULL;
    for (int i = 0; i < SMOE_VK_REPLAYS; i++) {
        smoe_vk_replay *r = &c->replays[i];
        if (r->valid && r->n == c->n_log && memcmp(r->log, c->log, (size_t)c->n_log * sizeof(*c->log)) == 0) {
            r->last_used = ++c->replay_tick;
            c->n_replayed++;
            c->last_replay = r;
            *out = r->cmd;
            return SMOE_OK;
        }
        if (!victim || !r->valid || (victim->valid && r->last_used < victim->last_used)) victim = r;
    }
    if (!victim->cmd) {
        VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                          .commandPool = c->cmd_pool,
                                          .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                          .commandBufferCount = 1};
        SMOE_VK_TRY(vkAllocateCommandBuffers(c->device, &ai, &victim->cmd), "vkAllocateCommandBuffers");
    }
    victim->valid = false;
    SMOE_TRY(record_log(c, victim->cmd, false));
    /* keep the log: swap arrays with the entry (no copy) */
    smoe_vk_logged *l = victim->log;
    const int cap = victim->cap;
    victim->log = c->log;
    victim->cap = c->cap_log;
    victim->n = c->n_log;
    c->log = l;
    c->cap_log = cap;
    c->n_log = 0;
    victim->valid = true;
    victim->last_used = ++c->replay_tick;
    c->n_recorded++;
    c->last_replay = victim;
    *out = victim->cmd;
    return SMOE_OK;
}

static smoe_status submit_cmd(smoe_vk_ctx *c, VkCommandBuffer cmd) {
    ((volatile uint32_t *)c->status.mapped)[0] = 0;
    SMOE_VK_TRY(vkResetFences(c->device, 1, &c->fence), "vkResetFences");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &cmd};
    SMOE_VK_TRY(vkQueueSubmit(c->queue, 1, &si, c->fence), "vkQueueSubmit");
    c->pending = true;
    return SMOE_OK;
}

smoe_status smoe_vk_submit(smoe_vk_ctx *c) {
    VkCommandBuffer cmd = VK_NULL_HANDLE;
    c->last_replay = NULL;
    SMOE_TRY(command_buffer_for_log(c, &cmd));
    return submit_cmd(c, cmd);
}

smoe_status smoe_vk_resubmit(smoe_vk_ctx *c, smoe_vk_replay *r, bool *done) {
    *done = false;
    if (!r || !r->valid || !r->cmd) return SMOE_OK;
    SMOE_TRY(smoe_vk_wait(c));
    c->n_log = 0;
    r->last_used = ++c->replay_tick;
    c->n_replayed++;
    c->last_replay = r;
    *done = true;
    return submit_cmd(c, r->cmd);
}
