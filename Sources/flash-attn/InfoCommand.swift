import ArgumentParser
import FlashAttention
import FlashAttentionCUDA
import Foundation

/// `flash-attn info`: the GPUs, the CUDA libraries found (versions and files) and the
/// kernel cache. Always exits 0: a machine without CUDA is a valid answer.
struct InfoCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "info",
    abstract: "Show the GPUs, the CUDA driver, NVRTC and cuBLAS found, and the kernel cache.",
    discussion: """
      NVRTC and cuBLAS are searched in: $FLASH_ATTN_NVRTC / $FLASH_ATTN_CUBLAS (a file or folder), \
      $CUDA_HOME and $CUDA_PATH (lib64), /usr/local/cuda/lib64, the nvidia/*/lib folders of Python's \
      site-packages (pip install nvidia-cuda-nvrtc), then the plain sonames. The driver is \
      libcuda.so.1 from the system; stubs/ and compat/ copies are never loaded.
      """)

  func run() {
    let env = CUDAEnvironment.probe()
    switch env.driver {
    case let .success(driver):
      print("CUDA driver: \(driver.version) (\(driver.path))")
    case let .failure(error):
      print("CUDA: not available on this machine (\(error)); the CPU backend is used.")
    }
    switch env.devices {
    case let .success(devices) where devices.isEmpty:
      print("GPUs: none")
    case let .success(devices):
      print("GPUs:")
      for d in devices {
        let arch = d.arch.map { "kernels for \($0.rawValue)" } ?? "unsupported: needs sm_80 or newer"
        print(
          "  \(d.ordinal): \(d.name), compute capability \(d.computeCapabilityMajor).\(d.computeCapabilityMinor) (\(arch)), "
            + "\(d.multiprocessorCount) SMs, \(gib(d.totalMemoryBytes)) GiB, "
            + "\(d.sharedMemoryPerBlockOptin / 1024) KiB shared memory per block")
      }
    case let .failure(error):
      if case .success = env.driver { print("GPUs: none usable (\(error))") }
    }
    switch env.nvrtc {
    case let .success(nvrtc):
      let archs = env.nvrtcArchs.isEmpty ? "" : ", targets sm_\(env.nvrtcArchs.first!)…sm_\(env.nvrtcArchs.last!)"
      print("NVRTC: \(nvrtc.version) (\(nvrtc.path))\(archs)")
    case let .failure(error):
      print("NVRTC: not found (\(error)); install it with `pip install nvidia-cuda-nvrtc` or set FLASH_ATTN_NVRTC")
    }
    switch env.cublas {
    case let .success(cublas): print("cuBLAS: \(cublas.version) (\(cublas.path))")
    case let .failure(error): print("cuBLAS: not found (\(error)); standard attention on the GPU needs it")
    }
    print(
      "Kernel cache: \(env.cacheDirectory) (\(env.cacheFiles) kernels, \(String(format: "%.1f", Double(env.cacheBytes) / 1_048_576)) MiB)")
    print("CUDA backend: \(env.usable ? "usable (--device cuda)" : "not usable; --device auto runs on the CPU")")
  }

  private func gib(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_073_741_824) }
}
