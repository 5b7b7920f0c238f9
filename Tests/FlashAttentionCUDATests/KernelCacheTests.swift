import Foundation
import Testing
import FlashAttention
@testable import FlashAttentionCUDA

@Suite struct KernelCacheTests {
  static let source = """
    struct Params { float* x; int n; float factor; };
    extern "C" __global__ void scale_kernel(Params p) {
      int i = blockIdx.x * blockDim.x + threadIdx.x;
      __shared__ float tile[128];
      tile[threadIdx.x] = i < p.n ? p.x[i] : 0.0f;
      __syncthreads();
      if (i < p.n) p.x[i] = tile[threadIdx.x] * p.factor;
    }
    """

  @Test func defaultFolderFollowsXDG() {
    #expect(KernelCache.defaultDirectory(environment: ["XDG_CACHE_HOME": "/x", "HOME": "/h"]) == "/x/flash-attn")
    #expect(KernelCache.defaultDirectory(environment: ["HOME": "/h"]) == "/h/.cache/flash-attn")
    #expect(KernelCache.defaultDirectory(environment: ["FLASH_ATTN_CACHE_DIR": "/c", "HOME": "/h"]) == "/c")
  }

  @Test func keyDependsOnEveryInput() {
    let base = KernelCache.key(source: "a", options: ["-x"], arch: .sm80, compilerVersion: "13.0")
    #expect(base.count == 64)
    #expect(base == KernelCache.key(source: "a", options: ["-x"], arch: .sm80, compilerVersion: "13.0"))
    #expect(base != KernelCache.key(source: "b", options: ["-x"], arch: .sm80, compilerVersion: "13.0"))
    #expect(base != KernelCache.key(source: "a", options: ["-y"], arch: .sm80, compilerVersion: "13.0"))
    #expect(base != KernelCache.key(source: "a", options: ["-x"], arch: .sm90a, compilerVersion: "13.0"))
    #expect(base != KernelCache.key(source: "a", options: ["-x"], arch: .sm80, compilerVersion: "13.1"))
  }

  /// The disk format on its own (no compiler needed): written entries read back; a flipped
  /// byte, a truncated file or a foreign file is rejected.
  @Test func diskEntriesAreCheckedBeforeUse() throws {
    let folder = makeTemporaryFolder("cache-format")
    let cache = KernelCache(directory: folder)
    let key = String(repeating: "ab", count: 32)
    let cubin: [UInt8] = (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 31) }
    cache.writeEntry(directory: folder, key: key, log: "ptxas info : Used 8 registers", cubin: cubin)
    guard case let .found(log, read) = cache.readEntry(directory: folder, key: key) else {
      Issue.record("entry not read back")
      return
    }
    #expect(read == cubin)
    #expect(log == "ptxas info : Used 8 registers")
    let file = cache.path(directory: folder, key: key)
    #expect(!(try FileManager.default.contentsOfDirectory(atPath: folder)).contains { $0.contains(".tmp") })

    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    bytes[bytes.count - 100] ^= 0x01
    try Data(bytes).write(to: URL(fileURLWithPath: file))
    guard case .rejected = cache.readEntry(directory: folder, key: key) else {
      Issue.record("a flipped byte was trusted")
      return
    }
    try Data(bytes.prefix(40)).write(to: URL(fileURLWithPath: file))
    guard case .rejected = cache.readEntry(directory: folder, key: key) else {
      Issue.record("a truncated entry was trusted")
      return
    }
    try Data("not a cache entry".utf8).write(to: URL(fileURLWithPath: file))
    guard case .rejected = cache.readEntry(directory: folder, key: key) else {
      Issue.record("a foreign file was trusted")
      return
    }
    guard case .absent = cache.readEntry(directory: folder, key: String(repeating: "cd", count: 32)) else {
      Issue.record("a missing entry was found")
      return
    }
  }

  @Test(.enabled(if: Availability.nvrtc, "NVRTC not found: set FLASH_ATTN_NVRTC (pip install nvidia-cuda-nvrtc)"))
  func compilesThenServesFromMemoryThenDisk() throws {
    let folder = makeTemporaryFolder("cache-flow")
    let cache = KernelCache(directory: folder)
    for arch in [GPUArch.sm80, .sm90a] {
      let first = try cache.compile(source: Self.source, name: "scale_kernel", arch: arch)
      #expect(first.origin == .compiled)
      #expect(first.cubin.count > 100)
      #expect(Array(first.cubin.prefix(4)) == [0x7F, 0x45, 0x4C, 0x46])  // ELF
      let report = try #require(first.reports.first)
      #expect(report.function == "scale_kernel")
      #expect(report.arch == arch.rawValue)
      #expect(report.registers > 0)
      #expect(report.sharedMemoryBytes == 512)
      #expect(try cache.compile(source: Self.source, name: "scale_kernel", arch: arch).origin == .memory)
    }
    cache.clearMemory()
    let fromDisk = try cache.compile(source: Self.source, name: "scale_kernel", arch: .sm80)
    #expect(fromDisk.origin == .disk)
    #expect(fromDisk.reports.first?.registers ?? 0 > 0)
    #expect(cache.statistics == .init(memoryHits: 2, diskHits: 1, compilations: 2, rejectedEntries: 0))
    #expect(cache.diskUsage().files == 2)
  }

  @Test(.enabled(if: Availability.nvrtc, "NVRTC not found: set FLASH_ATTN_NVRTC (pip install nvidia-cuda-nvrtc)"))
  func corruptEntryIsRecompiledNotTrusted() throws {
    let folder = makeTemporaryFolder("cache-corrupt")
    let cache = KernelCache(directory: folder)
    let good = try cache.compile(source: Self.source, name: "scale_kernel", arch: .sm80)
    let file = cache.path(directory: folder, key: good.key)
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
    bytes[bytes.count / 2] ^= 0xFF
    try Data(bytes).write(to: URL(fileURLWithPath: file))
    cache.clearMemory()
    let again = try cache.compile(source: Self.source, name: "scale_kernel", arch: .sm80)
    #expect(again.origin == .compiled)
    #expect(again.cubin == good.cubin)
    #expect(cache.statistics.rejectedEntries == 1)
    // The rewritten entry is good again.
    cache.clearMemory()
    #expect(try cache.compile(source: Self.source, name: "scale_kernel", arch: .sm80).origin == .disk)
  }

  @Test(.enabled(if: Availability.nvrtc, "NVRTC not found: set FLASH_ATTN_NVRTC (pip install nvidia-cuda-nvrtc)"))
  func compileErrorCarriesLogAndSavedSource() throws {
    let folder = makeTemporaryFolder("cache-error")
    let cache = KernelCache(directory: folder)
    let broken = "extern \"C\" __global__ void broken(int* p) { p[0] = undeclared_name; }"
    do {
      _ = try cache.compile(source: broken, name: "broken", arch: .sm80)
      Issue.record("broken source compiled")
    } catch {
      guard case let .compilation(kernel, log, sourcePath) = error else {
        Issue.record("unexpected error \(error)")
        return
      }
      #expect(kernel == "broken")
      #expect(log.contains("undeclared_name"))
      let path = try #require(sourcePath)
      #expect(try String(contentsOfFile: path, encoding: .utf8) == broken)
      #expect(error.description.contains(path))
    }
  }
}
