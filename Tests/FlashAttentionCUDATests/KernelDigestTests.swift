import FlashAttention
import Foundation
import Testing

@testable import FlashAttentionCUDA

/// Guards refactors of the kernel generators: a SHA-256 of every generated kernel source (the
/// catalog of every arch and the Hopper sweep variants) and of every launch the planners make
/// for a grid of problems (grid, block, shared memory, parameter bytes), compared with
/// `KernelDigests.txt`. A pure move keeps every line. When emission changes on purpose,
/// regenerate the file in the same commit and say why:
///
///     FLASH_ATTN_UPDATE_DIGESTS=1 swift test -c release -Xswiftc -enable-testing --filter KernelDigestTests
///
/// then re-check the changed kernels on a GPU (`flash-attn verify --device cuda`).
@Suite struct KernelDigestTests {
  static let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("KernelDigests.txt")

  static func digest(_ text: String) -> String { String(SHA256.hex(SHA256.hash(Array(text.utf8))).prefix(16)) }
  static func digest(_ bytes: [UInt8]) -> String { String(SHA256.hex(SHA256.hash(bytes)).prefix(16)) }

  /// `source <arch> <kernel> <digest>` for every generated kernel.
  static func sourceLines() -> [String] {
    var kernels: [GeneratedKernel] = GPUArch.allCases.flatMap { KernelCatalog.kernels(arch: $0) }
    kernels += HopperSweep.variants().map { HopperForwardSource.generate($0) }
    var seen = Set<String>()
    return kernels.compactMap { k in
      let line = "source \(k.arch.rawValue) \(k.name) \(digest(k.source))"
      return seen.insert(line).inserted ? line : nil
    }
  }

  /// A tensor map encoder that needs no driver: the request's fields, as bytes.
  static let fakeEncoder: TensorMapEncoder = { r in
    var b = KernelParameterBlock()
    b.append(r.dataType)
    b.append(r.globalAddress)
    for d in r.globalDims { b.append(d) }
    for s in r.globalStrides { b.append(s) }
    for d in r.boxDims { b.append(d) }
    var bytes = b.finished
    bytes += [UInt8](repeating: 0, count: 128 - bytes.count)
    return bytes
  }

  static func launchLine(_ label: String, _ l: KernelLaunch) -> String {
    "launch \(label) \(l.kernel.name) \(l.entryPoint) grid \(l.grid.x),\(l.grid.y),\(l.grid.z) block \(l.block.x) "
      + "smem \(l.dynamicSharedMemoryBytes) params \(l.parameterBlock.count) \(digest(l.parameterBlock))"
  }

  /// `launch <case> …` for the forward and backward plans of the dump grid, on sm_80 and sm_90a
  /// (with the Hopper planner, persistent and dynamic where its table says so).
  static func launchLines() throws -> [String] {
    var lines: [String] = []
    let cases = try CodegenDumpTests.cases()
    for (n, c) in cases.enumerated() {
      let p = c.problem
      let qs = CodegenDumpTests.strides(p.queryShape, c.layout), kvs = CodegenDumpTests.strides(p.keyValueShape, c.layout)
      func ref(_ r: CodegenDumpTests.Role, _ s: TensorStrides) -> DeviceTensorRef {
        DeviceTensorRef(address: CodegenDumpTests.address(r), strides: s)
      }
      for arch in [GPUArch.sm80, .sm90a] {
        let label = "\(n)/\(arch.rawValue)"
        for l in try FlashAttentionKernels.forward(
          problem: p, dtype: c.dtype, arch: arch, q: ref(.q, qs), k: ref(.k, kvs), v: ref(.v, kvs),
          output: ref(.o, qs), lse: CodegenDumpTests.address(.lse))
        {
          lines.append(launchLine("\(label)/fwd", l))
        }
        for l in try FlashAttentionKernels.backward(
          problem: p, dtype: c.dtype, arch: arch, q: ref(.q, qs), k: ref(.k, kvs), v: ref(.v, kvs),
          output: ref(.o, qs), dOutput: ref(.dout, qs), lse: CodegenDumpTests.address(.lse), dq: ref(.dq, qs),
          dk: ref(.dk, kvs), dv: ref(.dv, kvs), scratch: CodegenDumpTests.address(.scratch),
          deterministic: c.deterministic)
        {
          lines.append(launchLine("\(label)/bwd", l))
        }
      }
      let hopper = (q: ref(.q, qs), k: ref(.k, kvs), v: ref(.v, kvs), o: ref(.o, qs))
      if HopperForwardPlanner.unsupportedReason(
        problem: p, dtype: c.dtype, arch: .sm90a, q: hopper.q, k: hopper.k, v: hopper.v, output: hopper.o) == nil
      {
        for (tag, sms, counter) in [("static", nil, nil), ("sm132", 132, CodegenDumpTests.address(.scratch))] as [(String, Int?, UInt64?)] {
          for l in try HopperForwardPlanner.plan(
            problem: p, dtype: c.dtype, arch: .sm90a, q: hopper.q, k: hopper.k, v: hopper.v, output: hopper.o,
            lse: CodegenDumpTests.address(.lse), multiprocessorCount: sms, tileCounter: counter,
            encodeTensorMap: fakeEncoder)
          {
            lines.append(launchLine("\(n)/hopper-\(tag)", l))
          }
        }
      }
    }
    return lines
  }

  @Test func everyGeneratedKernelAndLaunchMatchesItsRecordedDigest() throws {
    let lines = Self.sourceLines() + (try Self.launchLines())
    let current = lines.joined(separator: "\n") + "\n"
    if let folder = ProcessInfo.processInfo.environment["FLASH_ATTN_KERNEL_SOURCES"] {
      // Every source as <folder>/<arch>/<name>.cu, for scripts/cuda/sass_digest.py to compare
      // the machine code of two commits.
      var kernels: [GeneratedKernel] = GPUArch.allCases.flatMap { KernelCatalog.kernels(arch: $0) }
      kernels += HopperSweep.variants().map { HopperForwardSource.generate($0) }
      for k in kernels {
        let dir = URL(fileURLWithPath: folder).appendingPathComponent(k.arch.rawValue)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try k.source.write(to: dir.appendingPathComponent(k.name + ".cu"), atomically: true, encoding: .utf8)
      }
    }
    if ProcessInfo.processInfo.environment["FLASH_ATTN_UPDATE_DIGESTS"] == "1" {
      try current.write(to: Self.file, atomically: true, encoding: .utf8)
      return
    }
    let recorded = try String(contentsOf: Self.file, encoding: .utf8)
    let old = Set(recorded.split(separator: "\n").map(String.init)), new = Set(lines)
    let removed = old.subtracting(new).sorted(), added = new.subtracting(old).sorted()
    #expect(
      removed.isEmpty && added.isEmpty,
      """
      generated kernels or launches changed (\(removed.count) recorded lines gone, \(added.count) new); \
      if on purpose, regenerate with FLASH_ATTN_UPDATE_DIGESTS=1 and say why in the commit.
      gone: \(removed.prefix(8).joined(separator: "\n      "))
      new: \(added.prefix(8).joined(separator: "\n     "))
      """)
    #expect(lines.count > 500, "the digest covers \(lines.count) kernels and launches")
  }
}
