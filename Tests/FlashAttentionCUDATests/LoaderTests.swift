import Foundation
import Testing
import FlashAttention
@testable import FlashAttentionCUDA

@Suite struct LoaderTests {
  @Test func stubsAndCompatCopiesAreNeverCandidates() {
    #expect(LibrarySearch.isForbidden("/usr/local/cuda/lib64/stubs/libcuda.so"))
    #expect(LibrarySearch.isForbidden("/usr/local/cuda/compat/libcuda.so.1"))
    #expect(!LibrarySearch.isForbidden("/usr/local/cuda/lib64/libnvrtc.so.13"))
    let root = makeTemporaryFolder("forbidden")
    touch(root + "/lib64/stubs/libnvrtc.so.13")
    let candidates = LibrarySearch.candidates(
      for: .nvrtc, environment: ["FLASH_ATTN_NVRTC": root + "/lib64/stubs", "HOME": root], askPython: false)
    #expect(!candidates.contains { $0.contains("/stubs/") })
  }

  @Test func searchOrderFollowsTheDocumentedSequence() throws {
    let root = makeTemporaryFolder("order")
    touch(root + "/explicit/libnvrtc.so.13")
    touch(root + "/cudahome/lib64/libnvrtc.so.12")
    touch(root + "/cudahome/lib64/libnvrtc.so.13")
    touch(root + "/cudahome/lib64/libnvrtc.alt.so.13")
    touch(root + "/cudahome/lib64/libnvrtc-builtins.so.13.0")
    touch(root + "/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libnvrtc.so.13")
    touch(root + "/venv/lib/python3.12/site-packages/nvidia/cuda_nvrtc/lib/libnvrtc.so.12")
    let env = [
      "FLASH_ATTN_NVRTC": root + "/explicit", "CUDA_HOME": root + "/cudahome", "VIRTUAL_ENV": root + "/venv",
      "HOME": root,
    ]
    let c = LibrarySearch.candidates(for: .nvrtc, environment: env, askPython: false)
    let site = root + "/venv/lib/python3.12/site-packages/nvidia"
    let expectedPrefix = [
      root + "/explicit/libnvrtc.so.13",
      root + "/cudahome/lib64/libnvrtc.so.13", root + "/cudahome/lib64/libnvrtc.so.12",
    ]
    #expect(Array(c.prefix(3)) == expectedPrefix)
    let cu13 = try #require(c.firstIndex(of: site + "/cu13/lib/libnvrtc.so.13"))
    let cu12 = try #require(c.firstIndex(of: site + "/cuda_nvrtc/lib/libnvrtc.so.12"))
    #expect(cu13 < cu12)
    #expect(Array(c.suffix(3)) == ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"])
    #expect(!c.contains { $0.contains(".alt.") || $0.contains("builtins") })
  }

  @Test func missingFileIsATypedError() {
    #expect(throws: CUDAError.self) {
      try DynamicLibrary.open("/nonexistent/libnvrtc.so.13", probeSymbol: "nvrtcVersion")
    }
    do {
      _ = try DynamicLibrary.open("/nonexistent/libnvrtc.so.13", probeSymbol: "nvrtcVersion")
    } catch {
      guard case let .libraryNotLoaded(library, _) = error else {
        Issue.record("unexpected \(error)")
        return
      }
      #expect(library == "/nonexistent/libnvrtc.so.13")
    }
  }

  @Test func libraryWithoutTheProbeSymbolIsRejected() {
    do {
      _ = try DynamicLibrary.open("libm.so.6", probeSymbol: "nvrtcVersion")
      Issue.record("libm.so.6 was accepted as NVRTC")
    } catch {
      #expect(error == .missingSymbol(library: "libm.so.6", symbol: "nvrtcVersion"))
    }
  }

  @Test func explicitPathThatDoesNotLoadNamesTheVariable() {
    let root = makeTemporaryFolder("explicit")
    touch(root + "/libnvrtc.so.13")  // not an ELF file
    do {
      _ = try LibrarySearch.open(.nvrtc, probeSymbol: "nvrtcVersion", environment: ["FLASH_ATTN_NVRTC": root + "/libnvrtc.so.13"])
      Issue.record("a junk file loaded")
    } catch {
      #expect(error.description.contains("FLASH_ATTN_NVRTC"))
      #expect(error.attentionError == .backendUnavailable(backend: "cuda", reason: error.description))
    }
  }

  /// Without a driver the loader reports `backendUnavailable` (callers fall back to the
  /// CPU); with one it must find at least the devices it reports.
  @Test func driverLoadsOrSaysWhyNot() throws {
    do {
      let driver = try CUDADriver.shared()
      #expect(driver.version >= 11000)
      #expect(!LibrarySearch.isForbidden(driver.libraryPath))
    } catch {
      guard case .libraryNotLoaded = error else {
        Issue.record("unexpected error without a driver: \(error)")
        return
      }
      guard case .backendUnavailable = error.attentionError else {
        Issue.record("not mapped to backendUnavailable: \(error.attentionError)")
        return
      }
    }
  }

  @Test func driverErrorsMapToTheCoreErrors() {
    let oom = CUDAError.driver(function: "cuMemAlloc_v2", code: 2, name: "CUDA_ERROR_OUT_OF_MEMORY", message: "out of memory")
    #expect(oom.attentionError == .outOfMemory(device: "cuda", requestedBytes: 0))
    let other = CUDAError.driver(function: "cuLaunchKernel", code: 1, name: "CUDA_ERROR_INVALID_VALUE", message: "invalid argument")
    #expect(other.description.contains("CUDA_ERROR_INVALID_VALUE"))
    #expect(other.attentionError == .backendFailure(backend: "cuda", message: other.description))
  }
}
