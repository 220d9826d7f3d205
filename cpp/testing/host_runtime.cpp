// Host execution of CUDA C++ for tests: the scheduler (one fibre per CUDA thread),
// barriers and warp collectives, the tracked "device" heap and the emulated runtime API.
// See cpp/testing/include/spk_host/runtime.h for the model and ARCHITECTURE.md for its limits.
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "spk_host/runtime.h"

namespace spk_host {

uint3 g_thread_idx{0, 0, 0};
uint3 g_block_idx{0, 0, 0};
dim3 g_block_dim{1, 1, 1};
dim3 g_grid_dim{1, 1, 1};

namespace {

// ---- emulated device ------------------------------------------------------------------------

constexpr std::size_t kDefaultSmem = 48 * 1024;
constexpr std::size_t kOptinSmem = 227 * 1024;  // what an H100 / H200 offers
constexpr std::size_t kTotalMem = std::size_t(16) << 30;
int g_sms = 4;

// ---- errors ---------------------------------------------------------------------------------

cudaError_t g_last = cudaSuccess;    // what cudaGetLastError returns (and clears)
cudaError_t g_sticky = cudaSuccess;  // a kernel fault: every later synchronising call reports it
std::string g_message;               // details of the last launch failure

void set_error(cudaError_t e, const std::string& msg) {
  g_last = e;
  g_message = msg;
  if (e == cudaErrorLaunchFailure || e == cudaErrorIllegalAddress) g_sticky = e;
}

// ---- tracked heap ---------------------------------------------------------------------------

constexpr std::size_t kRed = 256;  // red zone each side; also keeps 256-byte alignment
constexpr unsigned char kRedByte = 0xA5, kPoisonByte = 0xFF;
struct Alloc {
  std::size_t size;
  unsigned char* base;
};
std::map<std::uintptr_t, Alloc> g_heap;
std::size_t g_heap_bytes = 0;
bool g_untracked_ok = false;  // accept host memory the heap did not hand out as device memory

bool red_zones_intact(const Alloc& a, std::uintptr_t user) {
  const unsigned char* u = reinterpret_cast<const unsigned char*>(user);
  const std::size_t padded = (a.size + kRed - 1) / kRed * kRed;
  for (std::size_t i = 0; i < kRed; ++i)
    if (a.base[i] != kRedByte) return false;
  for (std::size_t i = a.size; i < padded + kRed; ++i)
    if (u[i] != kRedByte) return false;
  return true;
}

// The allocation holding [p, p + n), or nullptr.
const Alloc* find_alloc(const void* p, std::size_t n) {
  const auto u = reinterpret_cast<std::uintptr_t>(p);
  auto it = g_heap.upper_bound(u);
  if (it == g_heap.begin()) return nullptr;
  --it;
  if (u + n > it->first + it->second.size) return nullptr;
  return &it->second;
}

std::string check_heap() {
  for (const auto& [u, a] : g_heap)
    if (!red_zones_intact(a, u))
      return "a write outside a device allocation of " + std::to_string(a.size) + " bytes (its red zone is overwritten)";
  return {};
}

// ---- function attributes --------------------------------------------------------------------

std::map<const void*, int> g_max_dynamic_smem;

// ---- fibre contexts -------------------------------------------------------------------------
// On x86-64 a minimal switch (callee-saved registers, the stack pointer, MXCSR and the x87
// control word) that stays in user space; elsewhere ucontext, whose swapcontext also saves the
// signal mask with a system call per switch (correct, about 40 times slower).

#if defined(__x86_64__) && !defined(SPKH_USE_UCONTEXT)
extern "C" void spkh_switch(void** save_sp, void* load_sp);
asm(R"(
.text
.globl spkh_switch
.hidden spkh_switch
.type spkh_switch,@function
spkh_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size spkh_switch, .-spkh_switch
)");

struct Ctx {
  void* sp = nullptr;
};

// A context that starts `entry` (which must never return) on the given stack.
void ctx_init(Ctx& c, void* stack, std::size_t bytes, void (*entry)()) {
  auto top = reinterpret_cast<std::uintptr_t>(stack) + bytes;
  top &= ~std::uintptr_t(15);
  auto* p = reinterpret_cast<std::uint64_t*>(top);
  *--p = 0;                                          // padding: entry starts with rsp = 8 mod 16
  *--p = reinterpret_cast<std::uint64_t>(entry);     // `ret` goes here
  for (int i = 0; i < 6; ++i) *--p = 0;              // rbp rbx r12 r13 r14 r15
  std::uint32_t mxcsr;
  std::uint16_t fpcw;
  asm volatile("stmxcsr %0" : "=m"(mxcsr));
  asm volatile("fnstcw %0" : "=m"(fpcw));
  *--p = static_cast<std::uint64_t>(mxcsr) | (static_cast<std::uint64_t>(fpcw) << 32);
  c.sp = p;
}
inline void ctx_switch(Ctx& from, Ctx& to) { spkh_switch(&from.sp, to.sp); }
#else
struct Ctx {
  ucontext_t uc;
};
void ctx_init(Ctx& c, void* stack, std::size_t bytes, void (*entry)()) {
  getcontext(&c.uc);
  c.uc.uc_stack.ss_sp = stack;
  c.uc.uc_stack.ss_size = bytes;
  c.uc.uc_link = nullptr;
  makecontext(&c.uc, entry, 0);
}
inline void ctx_switch(Ctx& from, Ctx& to) { swapcontext(&from.uc, &to.uc); }
#endif

// ---- the scheduler --------------------------------------------------------------------------

enum class State { kRunnable, kWaiting, kDone };

struct Fibre {
  Ctx ctx;
  uint3 tid;
  State state;
  std::string waits_on;
};

struct BarrierState {
  int expected = 0;
  int arrived = 0;
  std::vector<int> waiting;
};

struct WarpState {
  const char* op = nullptr;
  unsigned mask = 0, arrived = 0;
  LaneSlot slot[32];
  std::vector<int> waiting;
};

constexpr std::size_t kStackBytes = 256 * 1024;
constexpr int kBarriers = 16;

struct Block {
  std::vector<Fibre> fibres;
  std::vector<WarpState> warps;
  BarrierState bars[kBarriers];
  Ctx sched;
  int cur = -1;
  int nthreads = 0;
  KernelBody* body = nullptr;
  bool failed = false;
  std::string error;
};

Block* g_block = nullptr;
int g_policy = 0;  // 0 forward, 1 reverse, 2 seeded random
std::uint64_t g_seed = 1;
std::uint64_t g_launches = 0, g_blocks = 0, g_switches = 0;

std::uint64_t next_random() {  // xorshift64*
  g_seed ^= g_seed >> 12;
  g_seed ^= g_seed << 25;
  g_seed ^= g_seed >> 27;
  return g_seed * 0x2545F4914F6CDD1DULL;
}

// Fibre stacks, kept between launches; each has a PROT_NONE guard page below it.
struct Stack {
  void* map;
  std::size_t bytes;
};
std::vector<Stack> g_stacks;

void* stack_of(int i) {
  const long page = sysconf(_SC_PAGESIZE);
  while (static_cast<int>(g_stacks.size()) <= i) {
    const std::size_t bytes = kStackBytes + static_cast<std::size_t>(page);
    void* m = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return nullptr;
    mprotect(m, static_cast<std::size_t>(page), PROT_NONE);
    g_stacks.push_back(Stack{m, bytes});
  }
  return static_cast<char*>(g_stacks[i].map) + page;
}

void yield_to_scheduler() {
  Block& b = *g_block;
  Fibre& me = b.fibres[b.cur];
  ++g_switches;
  ctx_switch(me.ctx, b.sched);
}

[[noreturn]] void fibre_entry() {
  Block& b = *g_block;
  b.body->run();
  b.fibres[b.cur].state = State::kDone;
  for (;;) yield_to_scheduler();  // a finished fibre is never resumed
}

std::string where(const LaunchCfg& cfg) {
  return std::string(cfg.file ? cfg.file : "?") + ":" + std::to_string(cfg.line);
}

std::string describe_deadlock(const Block& b) {
  int done = 0, waiting = 0;
  std::map<std::string, int> on;
  for (const Fibre& f : b.fibres) {
    if (f.state == State::kDone) ++done;
    if (f.state == State::kWaiting) {
      ++waiting;
      ++on[f.waits_on];
    }
  }
  std::string s = "deadlock: " + std::to_string(waiting) + " thread(s) wait and " + std::to_string(done) +
                  " have exited (";
  bool first = true;
  for (const auto& [k, n] : on) {
    s += (first ? "" : ", ") + std::to_string(n) + " at " + k;
    first = false;
  }
  return s + ") -- a barrier or warp collective that not every participant reaches";
}

// Runs one block to completion; returns false (with b.error) on a fault or deadlock.
bool run_block(Block& b, const dim3& block) {
  for (int i = 0; i < b.nthreads; ++i) {
    Fibre& f = b.fibres[i];
    f.state = State::kRunnable;
    f.waits_on.clear();
    ctx_init(f.ctx, stack_of(i), kStackBytes, fibre_entry);
  }
  for (auto& w : b.warps) {
    w.op = nullptr;
    w.arrived = 0;
    w.waiting.clear();
  }
  for (auto& bar : b.bars) bar = BarrierState{};
  std::vector<int> order(b.nthreads);
  for (;;) {
    for (int i = 0; i < b.nthreads; ++i) order[i] = g_policy == 1 ? b.nthreads - 1 - i : i;
    if (g_policy == 2)
      for (int i = b.nthreads - 1; i > 0; --i) std::swap(order[i], order[next_random() % (i + 1)]);
    bool ran = false, all_done = true;
    for (int i : order) {
      Fibre& f = b.fibres[i];
      if (f.state != State::kRunnable) continue;
      ran = true;
      b.cur = i;
      g_thread_idx = f.tid;
      ++g_switches;
      ctx_switch(b.sched, f.ctx);
      if (b.failed) return false;
    }
    for (const Fibre& f : b.fibres) all_done = all_done && f.state == State::kDone;
    if (all_done) return true;
    if (!ran) {
      b.error = describe_deadlock(b);
      return false;
    }
    (void)block;
  }
}

}  // namespace

// ---- barriers and collectives ----------------------------------------------------------------

[[noreturn]] void kernel_fault(const char* what) {
  Block& b = *g_block;
  b.failed = true;
  const uint3 t = b.fibres[b.cur].tid;
  b.error = std::string(what) + " (thread " + std::to_string(t.x) + "," + std::to_string(t.y) + "," +
            std::to_string(t.z) + ")";
  for (;;) yield_to_scheduler();  // never resumed: the launch is abandoned
}

void barrier(int id, int count) {
  Block& b = *g_block;
  if (id < 0 || id >= kBarriers) kernel_fault("bar.sync: barrier id out of range");
  if (count < 0) count = b.nthreads;
  if (count > b.nthreads || (count % 32 != 0 && count != b.nthreads))
    kernel_fault("bar.sync: thread count must be a multiple of 32 and at most the block size");
  BarrierState& bar = b.bars[id];
  if (bar.arrived == 0) bar.expected = count;
  if (bar.expected != count) kernel_fault("bar.sync: threads use the same barrier with different counts");
  ++bar.arrived;
  if (bar.arrived == bar.expected) {
    for (int i : bar.waiting) {
      b.fibres[i].state = State::kRunnable;
      b.fibres[i].waits_on.clear();
    }
    bar.waiting.clear();
    bar.arrived = 0;
    return;  // the last arriving thread carries on
  }
  bar.waiting.push_back(b.cur);
  Fibre& me = b.fibres[b.cur];
  me.state = State::kWaiting;
  me.waits_on = id == 0 ? "__syncthreads" : "bar.sync " + std::to_string(id);
  yield_to_scheduler();
}

std::uint64_t warp_collective(const char* what, unsigned mask, const LaneSlot& in, WarpCompute compute) {
  Block& b = *g_block;
  const int me = b.cur, lane = me % 32, warp = me / 32;
  if (!(mask >> lane & 1u)) kernel_fault("warp collective called by a lane outside its mask");
  const int lanes_here = std::min(32, b.nthreads - warp * 32);
  const unsigned exists = lanes_here == 32 ? 0xffffffffu : ((1u << lanes_here) - 1u);
  if (mask & ~exists) kernel_fault("warp collective mask names lanes beyond the block");
  WarpState& w = b.warps[warp];
  if (w.arrived == 0) {
    w.op = what;
    w.mask = mask;
  } else if (w.op != what || w.mask != mask) {
    kernel_fault((std::string("divergent warp collectives: ") + what + " while other lanes are in " + w.op +
                  " (or the masks differ)").c_str());
  }
  w.slot[lane] = in;
  w.arrived |= 1u << lane;
  if (w.arrived == w.mask) {
    compute(w.slot, w.mask);
    for (int i : w.waiting) {
      b.fibres[i].state = State::kRunnable;
      b.fibres[i].waits_on.clear();
    }
    w.waiting.clear();
    w.arrived = 0;
    return w.slot[lane].result;
  }
  w.waiting.push_back(me);
  Fibre& f = b.fibres[me];
  f.state = State::kWaiting;
  f.waits_on = what;
  yield_to_scheduler();
  return w.slot[lane].result;  // no later collective of this lane's has completed yet
}

namespace {
std::vector<unsigned char> g_dyn_smem;
}
unsigned char* dynamic_smem() { return g_dyn_smem.data(); }

cudaError_t set_func_attribute(const void* fn, cudaFuncAttribute attr, int value) {
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize || value < 0 ||
      static_cast<std::size_t>(value) > kOptinSmem)
    return g_last = cudaErrorInvalidValue;
  g_max_dynamic_smem[fn] = value;
  return cudaSuccess;
}

void run_launch(const LaunchCfg& cfg, const void* fn, KernelBody& body) {
  const std::string at = where(cfg);
  if (g_sticky != cudaSuccess) {
    g_last = g_sticky;
    return;
  }
  const dim3 gd = cfg.grid, bd = cfg.block;
  const unsigned long long threads = 1ull * bd.x * bd.y * bd.z;
  if (threads == 0 || threads > 1024 || bd.z > 64 || gd.x == 0 || gd.y == 0 || gd.z == 0 || gd.x > 0x7fffffffu ||
      gd.y > 65535 || gd.z > 65535) {
    set_error(cudaErrorInvalidConfiguration, "invalid launch configuration at " + at);
    return;
  }
  std::size_t smem_limit = kDefaultSmem;
  if (auto it = g_max_dynamic_smem.find(fn); it != g_max_dynamic_smem.end()) smem_limit = std::max<std::size_t>(smem_limit, it->second);
  if (cfg.smem > smem_limit) {
    set_error(cudaErrorInvalidConfiguration, "dynamic shared memory of " + std::to_string(cfg.smem) +
                                                 " bytes exceeds the function's limit at " + at);
    return;
  }
  ++g_launches;
  Block b;
  b.nthreads = static_cast<int>(threads);
  b.body = &body;
  b.fibres.resize(b.nthreads);
  b.warps.resize((b.nthreads + 31) / 32);
  for (int i = 0; i < b.nthreads; ++i) {
    const unsigned u = static_cast<unsigned>(i);
    b.fibres[i].tid = uint3{u % bd.x, u / bd.x % bd.y, u / (bd.x * bd.y)};
  }
  g_dyn_smem.assign(cfg.smem + 16, kPoisonByte);
  g_grid_dim = gd;
  g_block_dim = bd;
  const unsigned long long nblocks = 1ull * gd.x * gd.y * gd.z;
  Block* saved = g_block;
  g_block = &b;
  bool ok = true;
  std::vector<unsigned long long> border(nblocks);
  for (unsigned long long q = 0; q < nblocks; ++q) border[q] = g_policy == 1 ? nblocks - 1 - q : q;
  if (g_policy == 2)
    for (unsigned long long q = nblocks - 1; q > 0; --q) std::swap(border[q], border[next_random() % (q + 1)]);
  for (unsigned long long q = 0; q < nblocks && ok; ++q) {
    const unsigned long long k = border[q];
    g_block_idx = uint3{static_cast<unsigned>(k % gd.x), static_cast<unsigned>(k / gd.x % gd.y),
                        static_cast<unsigned>(k / (1ull * gd.x * gd.y))};
    std::fill(g_dyn_smem.begin(), g_dyn_smem.end(), kPoisonByte);
    ++g_blocks;
    ok = run_block(b, bd);
  }
  g_block = saved;
  if (!ok) {
    const uint3 bi = g_block_idx;
    set_error(cudaErrorLaunchFailure, "kernel launched at " + at + ", block (" + std::to_string(bi.x) + "," +
                                          std::to_string(bi.y) + "," + std::to_string(bi.z) + "): " + b.error);
    return;
  }
  const std::string heap = check_heap();
  if (!heap.empty()) set_error(cudaErrorIllegalAddress, "kernel launched at " + at + ": " + heap);
}

}  // namespace spk_host

using namespace spk_host;

// ---- runtime API ---------------------------------------------------------------------------

cudaError_t cudaGetLastError() {
  const cudaError_t e = g_last;
  g_last = g_sticky;
  return e;
}
cudaError_t cudaPeekAtLastError() { return g_last; }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDevicePointer: return "cudaErrorInvalidDevicePointer";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  if ((e == cudaErrorLaunchFailure || e == cudaErrorIllegalAddress || e == cudaErrorInvalidConfiguration) &&
      !g_message.empty())
    return g_message.c_str();
  return cudaGetErrorName(e);
}

cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) { return d == 0 ? cudaSuccess : (g_last = cudaErrorInvalidDevice); }

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (device != 0) return g_last = cudaErrorInvalidDevice;
  std::memset(p, 0, sizeof(*p));
  std::snprintf(p->name, sizeof(p->name), "spkernels host execution (emulated sm_90)");
  p->totalGlobalMem = kTotalMem;
  p->sharedMemPerBlock = kDefaultSmem;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = g_sms;
  p->sharedMemPerBlockOptin = kOptinSmem;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device != 0) return g_last = cudaErrorInvalidDevice;
  switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: *value = 1024; return cudaSuccess;
    case cudaDevAttrClockRate: *value = 1980000; return cudaSuccess;
    case cudaDevAttrMultiProcessorCount: *value = g_sms; return cudaSuccess;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = static_cast<int>(kOptinSmem); return cudaSuccess;
  }
  return g_last = cudaErrorInvalidValue;
}

cudaError_t cudaMemGetInfo(std::size_t* free_b, std::size_t* total_b) {
  *total_b = kTotalMem;
  *free_b = kTotalMem - g_heap_bytes;
  return g_sticky;
}

cudaError_t cudaMalloc(void** p, std::size_t bytes) {
  *p = nullptr;
  if (bytes > kTotalMem - g_heap_bytes) return g_last = cudaErrorMemoryAllocation;
  const std::size_t padded = (bytes + kRed - 1) / kRed * kRed;
  auto* base = static_cast<unsigned char*>(std::aligned_alloc(kRed, padded + 2 * kRed));
  if (!base) return g_last = cudaErrorMemoryAllocation;
  std::memset(base, kRedByte, kRed);
  std::memset(base + kRed, kPoisonByte, bytes);
  std::memset(base + kRed + bytes, kRedByte, padded - bytes + kRed);
  const auto user = reinterpret_cast<std::uintptr_t>(base + kRed);
  g_heap[user] = Alloc{bytes, base};
  g_heap_bytes += bytes;
  *p = base + kRed;
  return cudaSuccess;
}

cudaError_t cudaFree(void* p) {
  if (!p) return cudaSuccess;
  auto it = g_heap.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == g_heap.end()) return g_last = cudaErrorInvalidDevicePointer;
  const bool intact = red_zones_intact(it->second, it->first);
  g_heap_bytes -= it->second.size;
  std::free(it->second.base);
  g_heap.erase(it);
  if (!intact) {
    set_error(cudaErrorIllegalAddress, "cudaFree: a write outside the allocation overwrote its red zone");
    return cudaErrorIllegalAddress;
  }
  return g_sticky;
}

cudaError_t cudaMallocAsync(void** p, std::size_t bytes, cudaStream_t) { return cudaMalloc(p, bytes); }
cudaError_t cudaFreeAsync(void* p, cudaStream_t) { return cudaFree(p); }

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind) {
  return cudaMemcpyAsync(dst, src, n, kind, nullptr);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, cudaStream_t) {
  if (g_sticky != cudaSuccess) return g_sticky;
  if (n == 0) return cudaSuccess;
  const bool dst_dev = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
  const bool src_dev = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
  if (!g_untracked_ok && ((dst_dev && !find_alloc(dst, n)) || (src_dev && !find_alloc(src, n))))
    return g_last = cudaErrorInvalidValue;
  std::memmove(dst, src, n);
  return cudaSuccess;
}

cudaError_t cudaMemset(void* p, int value, std::size_t n) { return cudaMemsetAsync(p, value, n, nullptr); }

cudaError_t cudaMemsetAsync(void* p, int value, std::size_t n, cudaStream_t) {
  if (g_sticky != cudaSuccess) return g_sticky;
  if (n == 0) return cudaSuccess;
  if (!g_untracked_ok && !find_alloc(p, n)) return g_last = cudaErrorInvalidValue;
  std::memset(p, value, n);
  return cudaSuccess;
}

namespace {
int g_next_handle = 1;
std::map<cudaEvent_t, double> g_events;
}  // namespace

cudaError_t cudaStreamCreate(cudaStream_t* s) {
  *s = reinterpret_cast<cudaStream_t>(static_cast<std::uintptr_t>(g_next_handle++) << 4);
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return g_sticky; }
cudaError_t cudaDeviceSynchronize() { return g_sticky; }
cudaError_t cudaEventCreate(cudaEvent_t* e) {
  *e = reinterpret_cast<cudaEvent_t>(static_cast<std::uintptr_t>(g_next_handle++) << 4);
  g_events[*e] = 0.0;
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  g_events.erase(e);
  return cudaSuccess;
}
// Events count launches, not time: host execution says nothing about GPU timing.
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!g_events.count(e)) return g_last = cudaErrorInvalidValue;
  g_events[e] = static_cast<double>(g_launches);
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) { return g_events.count(e) ? g_sticky : cudaErrorInvalidValue; }
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t a, cudaEvent_t b) {
  if (!g_events.count(a) || !g_events.count(b)) return g_last = cudaErrorInvalidValue;
  *ms = 0.0f;
  return cudaSuccess;
}

// ---- controls for the tests (C ABI) ----------------------------------------------------------

extern "C" {

// 0 forward, 1 reverse, 2 seeded random: the order in which threads and blocks are resumed.
void spkh_set_schedule(int policy, unsigned long long seed) {
  g_policy = policy;
  g_seed = seed ? seed : 1;
}
void spkh_set_multiprocessors(int n) { g_sms = n > 0 ? n : 1; }
// 1: memcpy / memset accept any host memory as device memory (arrays of a CuPy stand-in that
// wraps NumPy); 0 (default): only the tracked heap's allocations, as a GPU would insist.
void spkh_allow_untracked(int on) { g_untracked_ok = on != 0; }
// Clears the sticky kernel fault (a real GPU would need a new context).
void spkh_reset() {
  g_last = g_sticky = cudaSuccess;
  g_message.clear();
}
long long spkh_live_allocations() { return static_cast<long long>(g_heap.size()); }
long long spkh_live_bytes() { return static_cast<long long>(g_heap_bytes); }
void spkh_stats(unsigned long long* out3) {
  out3[0] = g_launches;
  out3[1] = g_blocks;
  out3[2] = g_switches;
}
}
