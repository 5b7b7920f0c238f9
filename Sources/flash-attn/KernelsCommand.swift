import ArgumentParser
import FlashAttention
import FlashAttentionCUDA
import Foundation
import Synchronization

/// `flash-attn kernels`: lists the kernel variants and, with `--compile`, compiles each one
/// with NVRTC (no GPU needed) and prints ptxas's registers, shared memory and spills.
struct KernelsCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "kernels",
    abstract: "List the generated CUDA kernels; with --compile, compile each with NVRTC and show its resources.",
    discussion: """
      Needs no GPU: NVRTC alone compiles for any arch (pip install nvidia-cuda-nvrtc, or set \
      FLASH_ATTN_NVRTC). Exits non-zero when any kernel fails to compile; the failing source is \
      saved and its path printed with NVRTC's log.
      """)

  @Option(help: ArgumentHelp(
    "Comma-separated archs: sm_80, sm_86, sm_89, sm_90a (default: this machine's GPU, else sm_80,sm_90a).",
    valueName: "archs"))
  var arch: String?

  @Flag(help: "Compile every kernel with NVRTC and print registers, shared memory and spills.")
  var compile = false

  @Flag(help: "Compile even when the kernel cache holds the result.")
  var noCache = false

  func run() throws {
    let archs = try parseArchs()
    var failures = 0
    let cache = noCache ? KernelCache(directory: nil) : KernelCache.shared
    if compile {
      do {
        let nvrtc = try NVRTC.shared()
        print("NVRTC \(nvrtc.versionString) (\(nvrtc.path))")
      } catch {
        throw AttentionError.backendUnavailable(backend: "nvrtc", reason: error.description)
      }
      print(row("arch", "kernel", "entry point", "regs", "smem B", "stack B", "spill B", "result"))
    } else {
      print(row("arch", "kernel", "entry points", "", "", "", "", ""))
    }
    let kernels = archs.flatMap { a in KernelCatalog.kernels(arch: a) }
    guard compile else {
      for k in kernels { print(row(k.arch.rawValue, k.name, k.entryPoints.joined(separator: ","), "", "", "", "", "")) }
      return
    }
    // NVRTC is thread-safe: compile on every core, print in catalog order.
    let results = Mutex([Result<CompiledKernel, CUDAError>?](repeating: nil, count: kernels.count))
    DispatchQueue.concurrentPerform(iterations: kernels.count) { i in
      let r = Result { () throws(CUDAError) in try cache.compile(kernels[i]) }
      results.withLock { $0[i] = r }
    }
    for (kernel, result) in zip(kernels, results.withLock { $0 }) {
      let a = kernel.arch
      switch result! {
      case let .success(compiled):
        let reports = Dictionary(compiled.reports.map { ($0.function, $0) }, uniquingKeysWith: { a, _ in a })
        for entry in kernel.entryPoints {
          guard let r = reports[entry] else {
            failures += 1
            print(row(a.rawValue, kernel.name, entry, "", "", "", "", "FAILED: not in the ptxas report"))
            continue
          }
          let spill = r.spillStoreBytes + r.spillLoadBytes
          if r.wgmmaSerialized {
            failures += 1
            print(row(a.rawValue, kernel.name, entry, "", "", "", "", "FAILED: ptxas serialised its wgmma"))
            continue
          }
          print(
            row(
              a.rawValue, kernel.name, entry, "\(r.registers)", "\(r.sharedMemoryBytes)", "\(r.stackFrameBytes)",
              "\(spill)", spill > 0 ? "ok (spills)" : "ok"))
        }
      case let .failure(error):
        failures += 1
        print(row(a.rawValue, kernel.name, "", "", "", "", "", "FAILED"))
        FileHandle.standardError.write(Data((error.description + "\n").utf8))
      }
    }
    if failures > 0 {
      throw AttentionError.backendFailure(backend: "nvrtc", message: "\(failures) kernel(s) failed to compile or had their wgmma serialised (see above)")
    }
  }

  private func parseArchs() throws -> [GPUArch] {
    guard let arch else {
      let env = CUDAEnvironment.probe()
      if case let .success(devices) = env.devices, let local = devices.compactMap(\.arch).first { return [local] }
      return [.sm80, .sm90a]
    }
    return try arch.split(separator: ",").map { name in
      let trimmed = name.trimmingCharacters(in: .whitespaces)
      guard let a = GPUArch(name: trimmed) else {
        throw AttentionError.invalidArgument(
          argument: "--arch", value: trimmed, expected: GPUArch.allCases.map(\.rawValue).joined(separator: ", "))
      }
      return a
    }
  }

  private func row(_ cells: String...) -> String {
    let widths = [7, 44, 34, 5, 7, 8, 8, 0]
    return zip(cells, widths).map { cell, width in
      width == 0 ? cell : cell.padding(toLength: max(width, cell.count + 1), withPad: " ", startingAt: 0)
    }.joined().trimmingCharacters(in: .whitespaces)
  }
}
