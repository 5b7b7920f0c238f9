/// C types of the driver API, as the ABI defines them (see `cuda.h`; we include no header).
public typealias CUresult = Int32
public typealias CUdevice = Int32
public typealias CUdeviceptr = UInt64
public typealias CUcontext = OpaquePointer
public typealias CUmodule = OpaquePointer
public typealias CUfunction = OpaquePointer
public typealias CUstream = OpaquePointer
public typealias CUevent = OpaquePointer

/// The driver entry points we use, resolved from `libcuda.so.1` by their versioned names
/// (`cuMemAlloc_v2`, …): the unversioned names of `cuda.h` are macros for these, and the
/// bare symbols keep an older ABI (32-bit sizes) for old binaries.
struct DriverAPI: @unchecked Sendable {
  typealias Ptr<T> = UnsafeMutablePointer<T>
  let library: DynamicLibrary

  let cuInit: @convention(c) (UInt32) -> CUresult
  let cuDriverGetVersion: @convention(c) (Ptr<Int32>) -> CUresult
  let cuGetErrorName: @convention(c) (CUresult, Ptr<UnsafePointer<CChar>?>) -> CUresult
  let cuGetErrorString: @convention(c) (CUresult, Ptr<UnsafePointer<CChar>?>) -> CUresult
  let cuDeviceGetCount: @convention(c) (Ptr<Int32>) -> CUresult
  let cuDeviceGet: @convention(c) (Ptr<CUdevice>, Int32) -> CUresult
  let cuDeviceGetName: @convention(c) (Ptr<CChar>, Int32, CUdevice) -> CUresult
  let cuDeviceGetAttribute: @convention(c) (Ptr<Int32>, Int32, CUdevice) -> CUresult
  let cuDeviceTotalMem: @convention(c) (Ptr<Int>, CUdevice) -> CUresult
  let cuDevicePrimaryCtxRetain: @convention(c) (Ptr<CUcontext?>, CUdevice) -> CUresult
  let cuDevicePrimaryCtxRelease: @convention(c) (CUdevice) -> CUresult
  let cuCtxSetCurrent: @convention(c) (CUcontext?) -> CUresult
  let cuCtxSynchronize: @convention(c) () -> CUresult
  let cuModuleLoadData: @convention(c) (Ptr<CUmodule?>, UnsafeRawPointer) -> CUresult
  let cuModuleUnload: @convention(c) (CUmodule) -> CUresult
  let cuModuleGetFunction: @convention(c) (Ptr<CUfunction?>, CUmodule, UnsafePointer<CChar>) -> CUresult
  let cuFuncSetAttribute: @convention(c) (CUfunction, Int32, Int32) -> CUresult
  let cuFuncGetAttribute: @convention(c) (Ptr<Int32>, Int32, CUfunction) -> CUresult
  let cuLaunchKernel:
    @convention(c) (
      CUfunction, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUstream?,
      UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?
    ) -> CUresult
  let cuMemAlloc: @convention(c) (Ptr<CUdeviceptr>, Int) -> CUresult
  let cuMemFree: @convention(c) (CUdeviceptr) -> CUresult
  let cuMemGetInfo: @convention(c) (Ptr<Int>, Ptr<Int>) -> CUresult
  let cuMemcpyHtoD: @convention(c) (CUdeviceptr, UnsafeRawPointer, Int) -> CUresult
  let cuMemcpyDtoH: @convention(c) (UnsafeMutableRawPointer, CUdeviceptr, Int) -> CUresult
  let cuMemcpyDtoD: @convention(c) (CUdeviceptr, CUdeviceptr, Int) -> CUresult
  let cuMemsetD8: @convention(c) (CUdeviceptr, UInt8, Int) -> CUresult
  let cuMemsetD16: @convention(c) (CUdeviceptr, UInt16, Int) -> CUresult
  let cuMemsetD32: @convention(c) (CUdeviceptr, UInt32, Int) -> CUresult
  let cuStreamCreate: @convention(c) (Ptr<CUstream?>, UInt32) -> CUresult
  let cuStreamDestroy: @convention(c) (CUstream) -> CUresult
  let cuStreamSynchronize: @convention(c) (CUstream?) -> CUresult
  let cuEventCreate: @convention(c) (Ptr<CUevent?>, UInt32) -> CUresult
  let cuEventDestroy: @convention(c) (CUevent) -> CUresult
  let cuEventRecord: @convention(c) (CUevent, CUstream?) -> CUresult
  let cuEventSynchronize: @convention(c) (CUevent) -> CUresult
  let cuEventElapsedTime: @convention(c) (Ptr<Float>, CUevent, CUevent) -> CUresult
  /// `cuTensorMapEncodeTiled` (CUDA ≥ 12.0): nil on older drivers.
  let cuTensorMapEncodeTiled: TensorMapEncodeTiled?

  /// The raw C signature of `cuTensorMapEncodeTiled`: (tensorMap, dataType, rank, globalAddress,
  /// globalDim, globalStrides, boxDim, elementStrides, interleave, swizzle, l2Promotion, oobFill).
  typealias TensorMapEncodeTiled =
    @convention(c) (
      UnsafeMutableRawPointer, UInt32, UInt32, UnsafeMutableRawPointer?, UnsafePointer<UInt64>,
      UnsafePointer<UInt64>, UnsafePointer<UInt32>, UnsafePointer<UInt32>, UInt32, UInt32, UInt32, UInt32
    ) -> CUresult

  init(library l: DynamicLibrary) throws(CUDAError) {
    library = l
    cuInit = try l.require("cuInit")
    cuDriverGetVersion = try l.require("cuDriverGetVersion")
    cuGetErrorName = try l.require("cuGetErrorName")
    cuGetErrorString = try l.require("cuGetErrorString")
    cuDeviceGetCount = try l.require("cuDeviceGetCount")
    cuDeviceGet = try l.require("cuDeviceGet")
    cuDeviceGetName = try l.require("cuDeviceGetName")
    cuDeviceGetAttribute = try l.require("cuDeviceGetAttribute")
    cuDeviceTotalMem = try l.require("cuDeviceTotalMem_v2")
    cuDevicePrimaryCtxRetain = try l.require("cuDevicePrimaryCtxRetain")
    cuDevicePrimaryCtxRelease = try l.require("cuDevicePrimaryCtxRelease_v2")
    cuCtxSetCurrent = try l.require("cuCtxSetCurrent")
    cuCtxSynchronize = try l.require("cuCtxSynchronize")
    cuModuleLoadData = try l.require("cuModuleLoadData")
    cuModuleUnload = try l.require("cuModuleUnload")
    cuModuleGetFunction = try l.require("cuModuleGetFunction")
    cuFuncSetAttribute = try l.require("cuFuncSetAttribute")
    cuFuncGetAttribute = try l.require("cuFuncGetAttribute")
    cuLaunchKernel = try l.require("cuLaunchKernel")
    cuMemAlloc = try l.require("cuMemAlloc_v2")
    cuMemFree = try l.require("cuMemFree_v2")
    cuMemGetInfo = try l.require("cuMemGetInfo_v2")
    cuMemcpyHtoD = try l.require("cuMemcpyHtoD_v2")
    cuMemcpyDtoH = try l.require("cuMemcpyDtoH_v2")
    cuMemcpyDtoD = try l.require("cuMemcpyDtoD_v2")
    cuMemsetD8 = try l.require("cuMemsetD8_v2")
    cuMemsetD16 = try l.require("cuMemsetD16_v2")
    cuMemsetD32 = try l.require("cuMemsetD32_v2")
    cuStreamCreate = try l.require("cuStreamCreate")
    cuStreamDestroy = try l.require("cuStreamDestroy_v2")
    cuStreamSynchronize = try l.require("cuStreamSynchronize")
    cuEventCreate = try l.require("cuEventCreate")
    cuEventDestroy = try l.require("cuEventDestroy_v2")
    cuEventRecord = try l.require("cuEventRecord")
    cuEventSynchronize = try l.require("cuEventSynchronize")
    cuEventElapsedTime = try l.require("cuEventElapsedTime")
    cuTensorMapEncodeTiled = l.function("cuTensorMapEncodeTiled")
  }

  /// `CUDA_ERROR_NAME` for a result code, from the driver itself.
  func errorName(_ code: CUresult) -> String {
    var name: UnsafePointer<CChar>? = nil
    guard cuGetErrorName(code, &name) == 0, let name else { return "CUDA_ERROR_\(code)" }
    return String(cString: name)
  }

  func errorMessage(_ code: CUresult) -> String {
    var text: UnsafePointer<CChar>? = nil
    guard cuGetErrorString(code, &text) == 0, let text else { return "unknown error" }
    return String(cString: text)
  }

  /// Throws `CUDAError.driver` naming `function` unless `code` is `CUDA_SUCCESS`.
  @inline(__always)
  func check(_ code: CUresult, _ function: @autoclosure () -> String) throws(CUDAError) {
    if code != 0 {
      throw .driver(function: function(), code: code, name: errorName(code), message: errorMessage(code))
    }
  }
}
