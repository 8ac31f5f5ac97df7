/*
 * vk-device.c - Vulkan instance and device selection, capabilities, device memory, transfers and waiting.
 *
 * Environment (read at backend init; for tests and troubleshooting):
 *   SMOE_VK_VALIDATION=1        enable VK_LAYER_KHRONOS_validation and count its warnings/errors
 *                               (smoe_vk_backend_validation_messages)
 *   SMOE_VK_DISABLE=a,b,...     pretend the device lacks: f16 (16-bit storage), subgroup, f64, push (push
 *                               descriptors), dot (integer dot products), or "all": exercises the fallbacks
 *   SMOE_VK_MAX_BINDING=BYTES   use bindings smaller than maxStorageBufferRange (>= 4096): exercises the splitting
 *                               of large weights over several dispatches cheaply
 *   SMOE_VK_STAGING=1           copy through the staging buffer even where device memory is host memory
 *   SMOE_VK_TUNE=cpu|gpu        workgroup shapes for CPU devices (one invocation per matrix row) or GPUs (rows
 *                               shared by neighbouring invocations); default by device type. Tests run both.
 *   SMOE_VK_MM_COLS=N           activation columns (MUL_MAT_ID: pairs per expert on average) from which matrix
 *                               products run tiled (mul_mm.comp); 0 = never. Default SMOE_VK_MM_COLS_DEFAULT.
 */
#include "vk-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGING_SIZE ((VkDeviceSize)32 << 20)

const char *smoe_vk_result_name(VkResult r) {
    switch (r) {
#define CASE(x) case x: return #x;
        CASE(VK_SUCCESS)
        CASE(VK_NOT_READY)
        CASE(VK_TIMEOUT)
        CASE(VK_EVENT_SET)
        CASE(VK_EVENT_RESET)
        CASE(VK_INCOMPLETE)
        CASE(VK_ERROR_OUT_OF_HOST_MEMORY)
        CASE(VK_ERROR_OUT_OF_DEVICE_MEMORY)
        CASE(VK_ERROR_INITIALIZATION_FAILED)
        CASE(VK_ERROR_DEVICE_LOST)
        CASE(VK_ERROR_MEMORY_MAP_FAILED)
        CASE(VK_ERROR_LAYER_NOT_PRESENT)
        CASE(VK_ERROR_EXTENSION_NOT_PRESENT)
        CASE(VK_ERROR_FEATURE_NOT_PRESENT)
        CASE(VK_ERROR_INCOMPATIBLE_DRIVER)
        CASE(VK_ERROR_TOO_MANY_OBJECTS)
        CASE(VK_ERROR_FORMAT_NOT_SUPPORTED)
        CASE(VK_ERROR_FRAGMENTED_POOL)
        CASE(VK_ERROR_UNKNOWN)
        CASE(VK_ERROR_OUT_OF_POOL_MEMORY)
        CASE(VK_ERROR_INVALID_EXTERNAL_HANDLE)
        CASE(VK_ERROR_FRAGMENTATION)
        CASE(VK_ERROR_INVALID_OPAQUE_CAPTURE_ADDRESS)
        CASE(VK_PIPELINE_COMPILE_REQUIRED)
#undef CASE
    default: return "VK_ERROR_(unknown)";
    }
}

smoe_status smoe_vk_error(VkResult r, const char *what) {
    const bool oom = r == VK_ERROR_OUT_OF_HOST_MEMORY || r == VK_ERROR_OUT_OF_DEVICE_MEMORY ||
                     r == VK_ERROR_OUT_OF_POOL_MEMORY || r == VK_ERROR_FRAGMENTED_POOL ||
                     r == VK_ERROR_FRAGMENTATION || r == VK_ERROR_TOO_MANY_OBJECTS;
    return smoe_set_error(oom ? SMOE_ERR_OUT_OF_MEMORY : SMOE_ERR_DEVICE, "vulkan: %s: %s", what,
                          smoe_vk_result_name(r));
}

/* ---- environment ---- */

static bool env_flag(const char *name) {
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* Whether SMOE_VK_DISABLE lists `what` (or "all"). */
static bool env_disabled(const char *what) {
    const char *v = getenv("SMOE_VK_DISABLE");
    if (!v) return false;
    const size_t n = strlen(what);
    for (const char *s = v; *s;) {
        const char *e = strchr(s, ',');
        const size_t len = e ? (size_t)(e - s) : strlen(s);
        if ((len == n && strncmp(s, what, n) == 0) || (len == 3 && strncmp(s, "all", 3) == 0)) return true;
        s += len + (e ? 1 : 0);
    }
    return false;
}

/* ---- instance ---- */

static VKAPI_ATTR VkBool32 VKAPI_CALL debug_cb(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                               VkDebugUtilsMessageTypeFlagsEXT type,
                                               const VkDebugUtilsMessengerCallbackDataEXT *data, void *user) {
    (void)type;
    smoe_vk_ctx *c = user;
    if (severity < VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT) return VK_FALSE;
    if (c->n_validation_msgs++ == 0)
        snprintf(c->first_validation_msg, sizeof(c->first_validation_msg), "%s",
                 data && data->pMessage ? data->pMessage : "(no message)");
    return VK_FALSE;
}

static bool has_layer(const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS || n == 0) return false;
    VkLayerProperties *l = calloc(n, sizeof(*l));
    bool found = false;
    if (l && vkEnumerateInstanceLayerProperties(&n, l) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = strcmp(l[i].layerName, name) == 0;
    free(l);
    return found;
}

static bool has_instance_ext(const char *layer, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS || n == 0) return false;
    VkExtensionProperties *e = calloc(n, sizeof(*e));
    bool found = false;
    if (e && vkEnumerateInstanceExtensionProperties(layer, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = strcmp(e[i].extensionName, name) == 0;
    free(e);
    return found;
}

/* c may be NULL (device listing: no validation). */
static smoe_status create_instance(smoe_vk_ctx *c, VkInstance *out) {
    uint32_t version = VK_API_VERSION_1_0;
    SMOE_VK_TRY(vkEnumerateInstanceVersion(&version), "vkEnumerateInstanceVersion");
    SMOE_RETURN_IF(version < VK_API_VERSION_1_2, SMOE_ERR_UNSUPPORTED,
                   "vulkan: the Vulkan loader supports %u.%u, smoe needs 1.2", VK_API_VERSION_MAJOR(version),
                   VK_API_VERSION_MINOR(version));
    VkApplicationInfo app = {.sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
                             .pApplicationName = "smoe",
                             .pEngineName = "smoe",
                             .apiVersion = version >= VK_API_VERSION_1_3 ? VK_API_VERSION_1_3 : VK_API_VERSION_1_2};
    VkInstanceCreateInfo ci = {.sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO, .pApplicationInfo = &app};
    const char *layers[1], *exts[2];
    VkDebugUtilsMessengerCreateInfoEXT dbg = {
        .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
        .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
        .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT | VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
        .pfnUserCallback = debug_cb,
        .pUserData = c};
    /* synchronization validation too: it checks that every hazard between dispatches has a barrier */
    const VkValidationFeatureEnableEXT sync_validation = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT;
    VkValidationFeaturesEXT features = {.sType = VK_STRUCTURE_TYPE_VALIDATION_FEATURES_EXT,
                                        .enabledValidationFeatureCount = 1,
                                        .pEnabledValidationFeatures = &sync_validation};
    if (c && env_flag("SMOE_VK_VALIDATION")) {
        const char *vl = "VK_LAYER_KHRONOS_validation";
        SMOE_RETURN_IF(!has_layer(vl), SMOE_ERR_UNSUPPORTED,
                       "vulkan: SMOE_VK_VALIDATION is set but %s is not installed", vl);
        layers[0] = vl;
        ci.enabledLayerCount = 1;
        ci.ppEnabledLayerNames = layers;
        if (has_instance_ext(vl, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) ||
            has_instance_ext(NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
            exts[ci.enabledExtensionCount++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
            ci.ppEnabledExtensionNames = exts;
            ci.pNext = &dbg;
        }
        if (has_instance_ext(vl, VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME)) {
            exts[ci.enabledExtensionCount++] = VK_EXT_VALIDATION_FEATURES_EXTENSION_NAME;
            ci.ppEnabledExtensionNames = exts;
            features.pNext = ci.pNext;
            ci.pNext = &features;
        }
    }
    SMOE_VK_TRY(vkCreateInstance(&ci, NULL, out), "vkCreateInstance");
    if (c && ci.enabledExtensionCount && strcmp(exts[0], VK_EXT_DEBUG_UTILS_EXTENSION_NAME) == 0) {
        PFN_vkCreateDebugUtilsMessengerEXT create =
            (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(*out, "vkCreateDebugUtilsMessengerEXT");
        if (create && create(*out, &dbg, NULL, &c->messenger) != VK_SUCCESS) c->messenger = VK_NULL_HANDLE;
    }
    return SMOE_OK;
}

/* ---- physical devices ---- */

static int type_rank(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return 0;
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return 1;
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return 2;
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return 3;
    default: return 4;
    }
}

static bool compute_queue(VkPhysicalDevice pd, uint32_t *family) {
    uint32_t n = 0;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, NULL);
    VkQueueFamilyProperties *q = calloc(n ? n : 1, sizeof(*q));
    if (!q) return false;
    vkGetPhysicalDeviceQueueFamilyProperties(pd, &n, q);
    bool found = false;
    /* prefer a compute queue without graphics (dedicated), else any compute queue */
    for (int pass = 0; pass < 2 && !found; pass++)
        for (uint32_t i = 0; i < n && !found; i++) {
            const VkQueueFlags f = q[i].queueFlags;
            if (!(f & VK_QUEUE_COMPUTE_BIT) || q[i].queueCount == 0) continue;
            if (pass == 0 && (f & VK_QUEUE_GRAPHICS_BIT)) continue;
            *family = i;
            found = true;
        }
    free(q);
    return found;
}

/* Usable devices of `inst`, best first. *out is malloc'd (caller frees); returns the count (0 on failure). */
static int list_devices(VkInstance inst, VkPhysicalDevice **out) {
    *out = NULL;
    uint32_t n = 0;
    if (vkEnumeratePhysicalDevices(inst, &n, NULL) != VK_SUCCESS || n == 0) return 0;
    VkPhysicalDevice *all = calloc(n, sizeof(*all));
    VkPhysicalDevice *ok = calloc(n, sizeof(*ok));
    int *rank = calloc(n, sizeof(*rank));
    if (!all || !ok || !rank || vkEnumeratePhysicalDevices(inst, &n, all) != VK_SUCCESS) {
        free(all);
        free(ok);
        free(rank);
        return 0;
    }
    int m = 0;
    for (uint32_t i = 0; i < n; i++) {
        VkPhysicalDeviceProperties p;
        vkGetPhysicalDeviceProperties(all[i], &p);
        uint32_t fam;
        if (p.apiVersion < VK_API_VERSION_1_2 || !compute_queue(all[i], &fam)) continue;
        /* stable insertion by rank */
        const int r = type_rank(p.deviceType);
        int j = m;
        while (j > 0 && rank[j - 1] > r) {
            ok[j] = ok[j - 1];
            rank[j] = rank[j - 1];
            j--;
        }
        ok[j] = all[i];
        rank[j] = r;
        m++;
    }
    free(all);
    free(rank);
    *out = ok;
    return m;
}

int smoe_vk_device_count(void) {
    VkInstance inst = VK_NULL_HANDLE;
    if (create_instance(NULL, &inst) != SMOE_OK) {
        smoe_clear_error();
        return 0;
    }
    VkPhysicalDevice *devs = NULL;
    const int n = list_devices(inst, &devs);
    free(devs);
    vkDestroyInstance(inst, NULL);
    return n;
}

static uint64_t device_local_bytes(const VkPhysicalDeviceMemoryProperties *mp) {
    uint64_t best = 0;
    for (uint32_t i = 0; i < mp->memoryHeapCount; i++)
        if ((mp->memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) && mp->memoryHeaps[i].size > best)
            best = mp->memoryHeaps[i].size;
    return best;
}

static const char *type_name(VkPhysicalDeviceType t) {
    switch (t) {
    case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: return "discrete GPU";
    case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: return "integrated GPU";
    case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: return "virtual GPU";
    case VK_PHYSICAL_DEVICE_TYPE_CPU: return "CPU";
    default: return "other";
    }
}

static void describe(VkPhysicalDevice pd, int index, char *name, size_t name_size, char *desc, size_t desc_size,
                     uint64_t *mem) {
    VkPhysicalDeviceProperties p;
    VkPhysicalDeviceMemoryProperties mp;
    vkGetPhysicalDeviceProperties(pd, &p);
    vkGetPhysicalDeviceMemoryProperties(pd, &mp);
    if (name) snprintf(name, name_size, "vulkan%d", index);
    if (desc)
        snprintf(desc, desc_size, "%s (%s, Vulkan %u.%u.%u)", p.deviceName, type_name(p.deviceType),
                 VK_API_VERSION_MAJOR(p.apiVersion), VK_API_VERSION_MINOR(p.apiVersion),
                 VK_API_VERSION_PATCH(p.apiVersion));
    if (mem) *mem = device_local_bytes(&mp);
}

smoe_status smoe_vk_device_describe(int device, char *name, size_t name_size, char *desc, size_t desc_size,
                                    uint64_t *memory_total) {
    VkInstance inst = VK_NULL_HANDLE;
    SMOE_TRY(create_instance(NULL, &inst));
    VkPhysicalDevice *devs = NULL;
    const int n = list_devices(inst, &devs);
    smoe_status st = SMOE_OK;
    if (device < 0 || device >= n)
        st = smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "vulkan: device %d not in [0, %d)", device, n);
    else
        describe(devs[device], device, name, name_size, desc, desc_size, memory_total);
    free(devs);
    vkDestroyInstance(inst, NULL);
    return st;
}

/* ---- memory ---- */

static int find_mem_type(const smoe_vk_ctx *c, uint32_t bits, VkMemoryPropertyFlags want) {
    for (uint32_t i = 0; i < c->mem_props.memoryTypeCount; i++)
        if ((bits & (1u << i)) && (c->mem_props.memoryTypes[i].propertyFlags & want) == want) return (int)i;
    return -1;
}

smoe_status smoe_vk_mem_alloc(smoe_vk_ctx *c, VkDeviceSize size, bool host, smoe_vk_mem *m) {
    memset(m, 0, sizeof(*m));
    size = size < 16 ? 16 : (size + 15) & ~(VkDeviceSize)15;
    SMOE_RETURN_IF(size > c->max_alloc, SMOE_ERR_OUT_OF_MEMORY,
                   "vulkan: a buffer of %llu bytes exceeds the device's largest buffer (%llu bytes); split it",
                   (unsigned long long)size, (unsigned long long)c->max_alloc);
    VkBufferCreateInfo bi = {.sType = VK_STRUCTURE_TYPE_BUFFER_CREATE_INFO,
                             .size = size,
                             .usage = VK_BUFFER_USAGE_STORAGE_BUFFER_BIT | VK_BUFFER_USAGE_TRANSFER_SRC_BIT |
                                      VK_BUFFER_USAGE_TRANSFER_DST_BIT,
                             .sharingMode = VK_SHARING_MODE_EXCLUSIVE};
    SMOE_VK_TRY(vkCreateBuffer(c->device, &bi, NULL, &m->buffer), "vkCreateBuffer");
    VkMemoryRequirements req;
    vkGetBufferMemoryRequirements(c->device, m->buffer, &req);
    int type = -1;
    if (host) {
        /* cached host memory reads back fast; coherent is required */
        type = find_mem_type(c, req.memoryTypeBits, VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                                        VK_MEMORY_PROPERTY_HOST_COHERENT_BIT |
                                                        VK_MEMORY_PROPERTY_HOST_CACHED_BIT);
        if (type < 0)
            type = find_mem_type(c, req.memoryTypeBits,
                                 VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    } else {
        type = (req.memoryTypeBits & (1u << c->mem_type_device)) ? (int)c->mem_type_device
                                                                 : find_mem_type(c, req.memoryTypeBits, 0);
    }
    if (type < 0) {
        vkDestroyBuffer(c->device, m->buffer, NULL);
        m->buffer = VK_NULL_HANDLE;
        return smoe_set_error(SMOE_ERR_DEVICE, "vulkan: no suitable memory type for a %s buffer",
                              host ? "host-visible" : "device");
    }
    VkMemoryAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_MEMORY_ALLOCATE_INFO,
                               .allocationSize = req.size,
                               .memoryTypeIndex = (uint32_t)type};
    VkResult r = vkAllocateMemory(c->device, &ai, NULL, &m->memory);
    if (r == VK_SUCCESS) r = vkBindBufferMemory(c->device, m->buffer, m->memory, 0);
    const VkMemoryPropertyFlags flags = c->mem_props.memoryTypes[type].propertyFlags;
    const bool mappable = (flags & VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT) && (flags & VK_MEMORY_PROPERTY_HOST_COHERENT_BIT);
    if (r == VK_SUCCESS && (host || (c->uma && mappable && !c->force_staging)))
        r = vkMapMemory(c->device, m->memory, 0, VK_WHOLE_SIZE, 0, &m->mapped);
    if (r != VK_SUCCESS) {
        smoe_vk_mem_free(c, m);
        char what[96];
        snprintf(what, sizeof(what), "allocating %llu bytes of %s memory", (unsigned long long)size,
                 host ? "host-visible" : "device");
        return smoe_vk_error(r, what);
    }
    m->size = size;
    return SMOE_OK;
}

void smoe_vk_mem_free(smoe_vk_ctx *c, smoe_vk_mem *m) {
    if (!m || !c->device) return;
    smoe_vk_replays_invalidate(c); /* recorded command buffers may reference the buffer */
    if (m->mapped) vkUnmapMemory(c->device, m->memory);
    if (m->buffer) vkDestroyBuffer(c->device, m->buffer, NULL);
    if (m->memory) vkFreeMemory(c->device, m->memory, NULL);
    memset(m, 0, sizeof(*m));
}

/* ---- device ---- */

static bool has_device_ext(VkPhysicalDevice pd, const char *name) {
    uint32_t n = 0;
    if (vkEnumerateDeviceExtensionProperties(pd, NULL, &n, NULL) != VK_SUCCESS || n == 0) return false;
    VkExtensionProperties *e = calloc(n, sizeof(*e));
    bool found = false;
    if (e && vkEnumerateDeviceExtensionProperties(pd, NULL, &n, e) == VK_SUCCESS)
        for (uint32_t i = 0; i < n && !found; i++) found = strcmp(e[i].extensionName, name) == 0;
    free(e);
    return found;
}

static smoe_status create_device(smoe_vk_ctx *c) {
    /* what the device has */
    VkPhysicalDeviceVulkan13Features f13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES};
    VkPhysicalDeviceShaderIntegerDotProductFeatures fdot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES};
    VkPhysicalDeviceVulkan12Features f12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features f11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &f12};
    VkPhysicalDeviceFeatures2 f2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f11};
    const bool v13 = c->props.apiVersion >= VK_API_VERSION_1_3;
    const bool dot_ext = !v13 && has_device_ext(c->phys, VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME);
    if (v13) f12.pNext = &f13;
    else if (dot_ext) f12.pNext = &fdot;
    vkGetPhysicalDeviceFeatures2(c->phys, &f2);

    VkPhysicalDeviceSubgroupProperties sg = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES};
    VkPhysicalDeviceProperties2 p2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &sg};
    vkGetPhysicalDeviceProperties2(c->phys, &p2);

    smoe_vk_caps *caps = &c->caps;
    caps->storage16 = f11.storageBuffer16BitAccess && !env_disabled("f16");
    caps->subgroup = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                     (sg.supportedOperations & VK_SUBGROUP_FEATURE_BASIC_BIT) &&
                     (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT) && sg.subgroupSize >= 4 &&
                     !env_disabled("subgroup");
    caps->float64 = f2.features.shaderFloat64 && !env_disabled("f64");
    caps->push_desc = has_device_ext(c->phys, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME) && !env_disabled("push");
    caps->int_dot = (v13 ? f13.shaderIntegerDotProduct : dot_ext && fdot.shaderIntegerDotProduct) &&
                    !env_disabled("dot");
    caps->fast = caps->storage16 && caps->subgroup;
    c->subgroup_size = sg.subgroupSize;

    /* what we enable: only what we use */
    VkPhysicalDeviceVulkan13Features e13 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_3_FEATURES,
                                            .shaderIntegerDotProduct = caps->int_dot};
    VkPhysicalDeviceShaderIntegerDotProductFeatures edot = {
        .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_INTEGER_DOT_PRODUCT_FEATURES,
        .shaderIntegerDotProduct = caps->int_dot};
    VkPhysicalDeviceVulkan12Features e12 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_2_FEATURES};
    VkPhysicalDeviceVulkan11Features e11 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_1_1_FEATURES,
                                            .pNext = &e12,
                                            .storageBuffer16BitAccess = caps->storage16};
    VkPhysicalDeviceFeatures2 e2 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &e11};
    e2.features.shaderFloat64 = caps->float64;
    if (caps->int_dot) e12.pNext = v13 ? (void *)&e13 : (void *)&edot;

    const char *exts[2];
    uint32_t n_ext = 0;
    if (caps->push_desc) exts[n_ext++] = VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME;
    if (caps->int_dot && !v13) exts[n_ext++] = VK_KHR_SHADER_INTEGER_DOT_PRODUCT_EXTENSION_NAME;

    const float prio = 1.0f;
    VkDeviceQueueCreateInfo qi = {.sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
                                  .queueFamilyIndex = c->queue_family,
                                  .queueCount = 1,
                                  .pQueuePriorities = &prio};
    VkDeviceCreateInfo di = {.sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
                             .pNext = &e2,
                             .queueCreateInfoCount = 1,
                             .pQueueCreateInfos = &qi,
                             .enabledExtensionCount = n_ext,
                             .ppEnabledExtensionNames = n_ext ? exts : NULL};
    SMOE_VK_TRY(vkCreateDevice(c->phys, &di, NULL, &c->device), "vkCreateDevice");
    vkGetDeviceQueue(c->device, c->queue_family, 0, &c->queue);

    /* limits */
    VkPhysicalDeviceMaintenance3Properties m3 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES};
    VkPhysicalDeviceMaintenance4Properties m4 = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES};
    if (v13) m3.pNext = &m4;
    VkPhysicalDeviceProperties2 pl = {.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2, .pNext = &m3};
    vkGetPhysicalDeviceProperties2(c->phys, &pl);
    const VkPhysicalDeviceLimits *lim = &c->props.limits;
    c->min_align = lim->minStorageBufferOffsetAlignment ? lim->minStorageBufferOffsetAlignment : 1;
    c->max_range = lim->maxStorageBufferRange & ~(VkDeviceSize)3;
    const char *mb = getenv("SMOE_VK_MAX_BINDING");
    if (mb && *mb) {
        char *end = NULL;
        unsigned long long v = strtoull(mb, &end, 0);
        SMOE_RETURN_IF(!end || *end || v < 4096, SMOE_ERR_INVALID_ARGUMENT,
                       "vulkan: SMOE_VK_MAX_BINDING='%s': expected a byte count >= 4096", mb);
        if (v < c->max_range) c->max_range = v & ~(VkDeviceSize)3;
    }
    c->max_alloc = m3.maxMemoryAllocationSize ? m3.maxMemoryAllocationSize : ((VkDeviceSize)1 << 30);
    if (v13 && m4.maxBufferSize && m4.maxBufferSize < c->max_alloc) c->max_alloc = m4.maxBufferSize;
    c->max_alloc &= ~(VkDeviceSize)255;
    for (int i = 0; i < 3; i++) c->max_groups[i] = lim->maxComputeWorkGroupCount[i];
    c->max_wg = lim->maxComputeWorkGroupInvocations;
    c->max_shared = lim->maxComputeSharedMemorySize;
    return SMOE_OK;
}

static smoe_status choose_memory(smoe_vk_ctx *c) {
    vkGetPhysicalDeviceMemoryProperties(c->phys, &c->mem_props);
    int dev = -1;
    /* device-local; on UMA devices prefer a type that is also host-visible and coherent (copies become memcpy) */
    if (c->uma)
        for (uint32_t i = 0; i < c->mem_props.memoryTypeCount && dev < 0; i++) {
            const VkMemoryPropertyFlags f = c->mem_props.memoryTypes[i].propertyFlags;
            const VkMemoryPropertyFlags want = VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT |
                                               VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT |
                                               VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
            if ((f & want) == want) dev = (int)i;
        }
    for (uint32_t i = 0; i < c->mem_props.memoryTypeCount && dev < 0; i++)
        if (c->mem_props.memoryTypes[i].propertyFlags & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) dev = (int)i;
    SMOE_RETURN_IF(dev < 0, SMOE_ERR_DEVICE, "vulkan: %s has no device-local memory type", c->props.deviceName);
    c->mem_type_device = (uint32_t)dev;
    return SMOE_OK;
}

smoe_status smoe_vk_ctx_init(smoe_vk_ctx *c, int device) {
    c->device_index = device;
    SMOE_TRY(create_instance(c, &c->instance));
    VkPhysicalDevice *devs = NULL;
    const int n = list_devices(c->instance, &devs);
    if (device < 0 || device >= n) {
        free(devs);
        return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "vulkan: device %d not in [0, %d)", device, n);
    }
    c->phys = devs[device];
    free(devs);
    vkGetPhysicalDeviceProperties(c->phys, &c->props);
    compute_queue(c->phys, &c->queue_family);
    uint64_t mem = 0;
    describe(c->phys, device, c->name, sizeof(c->name), c->description, sizeof(c->description), &mem);
    c->uma = c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU ||
             c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    c->force_staging = env_flag("SMOE_VK_STAGING");
    const char *tune = getenv("SMOE_VK_TUNE");
    c->cpu_tuning = tune && *tune ? strcmp(tune, "cpu") == 0 : c->props.deviceType == VK_PHYSICAL_DEVICE_TYPE_CPU;
    c->mm_min_cols = SMOE_VK_MM_COLS_DEFAULT;
    const char *mm = getenv("SMOE_VK_MM_COLS");
    if (mm && *mm) {
        char *end = NULL;
        const unsigned long v = strtoul(mm, &end, 10);
        SMOE_RETURN_IF(!end || *end, SMOE_ERR_INVALID_ARGUMENT, "vulkan: SMOE_VK_MM_COLS='%s': expected a count", mm);
        c->mm_min_cols = v == 0 || v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    }
    SMOE_TRY(choose_memory(c));
    SMOE_TRY(create_device(c));

    VkCommandPoolCreateInfo pi = {.sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
                                  .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
                                  .queueFamilyIndex = c->queue_family};
    SMOE_VK_TRY(vkCreateCommandPool(c->device, &pi, NULL, &c->cmd_pool), "vkCreateCommandPool");
    VkCommandBuffer cbs[2];
    VkCommandBufferAllocateInfo ai = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
                                      .commandPool = c->cmd_pool,
                                      .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
                                      .commandBufferCount = 2};
    SMOE_VK_TRY(vkAllocateCommandBuffers(c->device, &ai, cbs), "vkAllocateCommandBuffers");
    c->cmd = cbs[0];
    c->cmd_xfer = cbs[1];
    VkFenceCreateInfo fi = {.sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO};
    SMOE_VK_TRY(vkCreateFence(c->device, &fi, NULL, &c->fence), "vkCreateFence");
    SMOE_VK_TRY(vkCreateFence(c->device, &fi, NULL, &c->fence_xfer), "vkCreateFence");

    const VkDeviceSize staging = STAGING_SIZE < c->max_alloc ? STAGING_SIZE : c->max_alloc;
    SMOE_TRY(smoe_vk_mem_alloc(c, staging, true, &c->staging));
    SMOE_TRY(smoe_vk_mem_alloc(c, 256, true, &c->status));
    SMOE_TRY(smoe_vk_mem_alloc(c, 256, false, &c->dummy));
    memset(c->status.mapped, 0, 256);
    SMOE_TRY(smoe_vk_pipelines_init(c));
    return SMOE_OK;
}

void smoe_vk_ctx_destroy(smoe_vk_ctx *c) {
    if (c->device) {
        vkDeviceWaitIdle(c->device);
        smoe_vk_pipelines_destroy(c);
        smoe_vk_mem_free(c, &c->staging);
        smoe_vk_mem_free(c, &c->status);
        smoe_vk_mem_free(c, &c->dummy);
        smoe_vk_mem_free(c, &c->scratch);
        if (c->fence) vkDestroyFence(c->device, c->fence, NULL);
        if (c->fence_xfer) vkDestroyFence(c->device, c->fence_xfer, NULL);
        if (c->cmd_pool) vkDestroyCommandPool(c->device, c->cmd_pool, NULL);
        vkDestroyDevice(c->device, NULL);
        c->device = VK_NULL_HANDLE;
    }
    if (c->instance) {
        if (c->messenger) {
            PFN_vkDestroyDebugUtilsMessengerEXT destroy = (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(
                c->instance, "vkDestroyDebugUtilsMessengerEXT");
            if (destroy) destroy(c->instance, c->messenger, NULL);
        }
        vkDestroyInstance(c->instance, NULL);
        c->instance = VK_NULL_HANDLE;
    }
    free(c->node_info);
    c->node_info = NULL;
}

/* ---- waiting and the status word ---- */

static smoe_status status_error(smoe_vk_ctx *c, uint32_t code) {
    const int idx = (int)(code >> 2) - 1;
    const uint32_t kind = code & 3u;
    const char *what = kind == SMOE_VK_ERR_ROW_ID ? "a row id" : kind == SMOE_VK_ERR_EXPERT_ID ? "an expert id"
                                                                                                : "a cell index";
    if (idx < 0 || idx >= c->node_info_cap)
        return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "%s: %s out of range", c->name, what);
    const smoe_vk_node_info *ni = &c->node_info[idx];
    return smoe_set_error(SMOE_ERR_INVALID_ARGUMENT, "%s (%s): %s: %s not in [0, %" PRId64 ")", ni->name,
                          smoe_op_name(ni->op), c->name, what, ni->bound);
}

/* With SMOE_VK_VALIDATION=1, a validation message received since the last check fails the next wait, so that every
 * test run under the layer fails on the first message. */
static smoe_status validation_error(smoe_vk_ctx *c) {
    if (c->n_validation_msgs == c->n_validation_reported) return SMOE_OK;
    c->n_validation_reported = c->n_validation_msgs;
    return smoe_set_error(SMOE_ERR_DEVICE, "%s: validation layer: %s", c->name, c->first_validation_msg);
}

smoe_status smoe_vk_wait(smoe_vk_ctx *c) {
    if (!c->pending) return validation_error(c);
    VkResult r = vkWaitForFences(c->device, 1, &c->fence, VK_TRUE, UINT64_MAX);
    c->pending = false;
    SMOE_RETURN_IF(r != VK_SUCCESS, r == VK_ERROR_DEVICE_LOST ? SMOE_ERR_DEVICE : SMOE_ERR_DEVICE,
                   "vulkan: waiting for the compute: %s", smoe_vk_result_name(r));
    volatile uint32_t *status = c->status.mapped;
    const uint32_t code = status[0];
    if (code) {
        status[0] = 0;
        return status_error(c, code);
    }
    return validation_error(c);
}

/* ---- transfers ---- */

static smoe_status xfer_begin(smoe_vk_ctx *c) {
    SMOE_VK_TRY(vkResetCommandBuffer(c->cmd_xfer, 0), "vkResetCommandBuffer");
    VkCommandBufferBeginInfo bi = {.sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO,
                                   .flags = VK_COMMAND_BUFFER_USAGE_ONE_TIME_SUBMIT_BIT};
    SMOE_VK_TRY(vkBeginCommandBuffer(c->cmd_xfer, &bi), "vkBeginCommandBuffer");
    /* earlier work (computes, copies) before this copy */
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_MEMORY_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_MEMORY_READ_BIT | VK_ACCESS_MEMORY_WRITE_BIT};
    vkCmdPipelineBarrier(c->cmd_xfer, VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb,
                         0, NULL, 0, NULL);
    return SMOE_OK;
}

static smoe_status xfer_submit(smoe_vk_ctx *c) {
    VkMemoryBarrier mb = {.sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
                          .srcAccessMask = VK_ACCESS_TRANSFER_WRITE_BIT,
                          .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_MEMORY_READ_BIT};
    vkCmdPipelineBarrier(c->cmd_xfer, VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_ALL_COMMANDS_BIT, 0, 1, &mb, 0, NULL, 0,
                         NULL);
    SMOE_VK_TRY(vkEndCommandBuffer(c->cmd_xfer), "vkEndCommandBuffer");
    SMOE_VK_TRY(vkResetFences(c->device, 1, &c->fence_xfer), "vkResetFences");
    VkSubmitInfo si = {.sType = VK_STRUCTURE_TYPE_SUBMIT_INFO, .commandBufferCount = 1, .pCommandBuffers = &c->cmd_xfer};
    SMOE_VK_TRY(vkQueueSubmit(c->queue, 1, &si, c->fence_xfer), "vkQueueSubmit (copy)");
    SMOE_VK_TRY(vkWaitForFences(c->device, 1, &c->fence_xfer, VK_TRUE, UINT64_MAX), "vkWaitForFences (copy)");
    return SMOE_OK;
}

smoe_status smoe_vk_write(smoe_vk_ctx *c, smoe_vk_mem *m, VkDeviceSize off, const void *src, size_t size) {
    SMOE_TRY(smoe_vk_wait(c));
    if (m->mapped) {
        memcpy((uint8_t *)m->mapped + off, src, size);
        return SMOE_OK;
    }
    const uint8_t *s = src;
    while (size > 0) {
        const size_t n = size < c->staging.size ? size : (size_t)c->staging.size;
        memcpy(c->staging.mapped, s, n);
        SMOE_TRY(xfer_begin(c));
        VkBufferCopy cp = {.srcOffset = 0, .dstOffset = off, .size = n};
        vkCmdCopyBuffer(c->cmd_xfer, c->staging.buffer, m->buffer, 1, &cp);
        SMOE_TRY(xfer_submit(c));
        s += n;
        off += n;
        size -= n;
    }
    return SMOE_OK;
}

smoe_status smoe_vk_read(smoe_vk_ctx *c, smoe_vk_mem *m, VkDeviceSize off, void *dst, size_t size) {
    SMOE_TRY(smoe_vk_wait(c));
    if (m->mapped) {
        memcpy(dst, (const uint8_t *)m->mapped + off, size);
        return SMOE_OK;
    }
    uint8_t *d = dst;
    while (size > 0) {
        const size_t n = size < c->staging.size ? size : (size_t)c->staging.size;
        SMOE_TRY(xfer_begin(c));
        VkBufferCopy cp = {.srcOffset = off, .dstOffset = 0, .size = n};
        vkCmdCopyBuffer(c->cmd_xfer, m->buffer, c->staging.buffer, 1, &cp);
        SMOE_TRY(xfer_submit(c));
        memcpy(d, c->staging.mapped, n);
        d += n;
        off += n;
        size -= n;
    }
    return SMOE_OK;
}

smoe_status smoe_vk_fill(smoe_vk_ctx *c, smoe_vk_mem *m, uint8_t value) {
    SMOE_TRY(smoe_vk_wait(c));
    if (m->mapped) {
        memset(m->mapped, value, m->size);
        return SMOE_OK;
    }
    SMOE_TRY(xfer_begin(c));
    const uint32_t v = value * 0x01010101u;
    vkCmdFillBuffer(c->cmd_xfer, m->buffer, 0, VK_WHOLE_SIZE, v);
    return xfer_submit(c);
}

smoe_status smoe_vk_scratch_reserve(smoe_vk_ctx *c, VkDeviceSize size) {
    if (size <= c->scratch.size) return SMOE_OK;
    SMOE_TRY(smoe_vk_wait(c));
    smoe_vk_mem_free(c, &c->scratch);
    SMOE_RETURN_IF(size > c->max_range, SMOE_ERR_UNSUPPORTED,
                   "vulkan: scratch of %llu bytes exceeds one binding (%llu)", (unsigned long long)size,
                   (unsigned long long)c->max_range);
    /* grow by half again, so that slowly growing batches do not reallocate every time */
    VkDeviceSize grown = size < (1u << 16) ? (1u << 16) : size + size / 2;
    if (grown > c->max_range) grown = c->max_range;
    return smoe_vk_mem_alloc(c, grown, false, &c->scratch);
}
