import FlashAttention

/// A contiguous `(batch, seqlen, heads, headDim)` tensor (or any flat array) in device memory.
final class DeviceTensor: @unchecked Sendable {
  let buffer: DeviceBuffer
  let shape: TensorShape
  let dtype: DType

  init(allocator: TrackingAllocator, shape: TensorShape, dtype: DType) throws(CUDAError) {
    buffer = try allocator.allocate(byteCount: shape.elementCount * dtype.byteCount)
    self.shape = shape
    self.dtype = dtype
  }

  /// Uploads `tensor` converted to `dtype` on the host.
  convenience init(allocator: TrackingAllocator, uploading tensor: AnyTensor, shape: TensorShape, as dtype: DType)
    throws(CUDAError)
  {
    try self.init(allocator: allocator, shape: shape, dtype: dtype)
    let bytes = shape.elementCount * dtype.byteCount
    switch tensor.converted(to: dtype) {
    case let .float32(t): try buffer.upload(from: t.pointer, bytes: bytes)
    case let .float16(t): try buffer.upload(from: t.pointer, bytes: bytes)
    case let .bfloat16(t): try buffer.upload(from: t.pointer, bytes: bytes)
    }
  }

  var ref: DeviceTensorRef { DeviceTensorRef(address: buffer.address, strides: .contiguous(shape)) }

  /// Fills with NaN so that an element no kernel writes shows up in every check.
  func poison() throws(CUDAError) {
    switch dtype {
    case .float32: try buffer.fill(uint32: 0x7FC0_0000, count: shape.elementCount)
    case .float16: try buffer.fill(uint16: 0x7E00, count: shape.elementCount)
    case .bfloat16: try buffer.fill(uint16: 0x7FC0, count: shape.elementCount)
    }
  }

  /// Every element as Float, C order.
  func floats() throws(CUDAError) -> [Float] {
    let n = shape.elementCount
    switch dtype {
    case .float32: return try buffer.download(Float.self, count: n)
    case .float16: return try buffer.download(UInt16.self, count: n).map { Float(Float16(bitPattern: $0)) }
    case .bfloat16: return try buffer.download(UInt16.self, count: n).map { BFloat16(bitPattern: $0).floatValue }
    }
  }

  /// A host tensor of `dtype` shaped `(batch, seqlen, heads, headDim)`.
  func download(as target: DType) throws(CUDAError) -> AnyTensor {
    let dims = shape.dimensions
    if target == dtype && dtype != .float32 {
      let bits = try buffer.download(UInt16.self, count: shape.elementCount)
      if dtype == .float16 {
        return .float16(Tensor(shape: dims, elements: bits.map { Float16(bitPattern: $0) }))
      }
      return .bfloat16(Tensor(shape: dims, elements: bits.map { BFloat16(bitPattern: $0) }))
    }
    return AnyTensor.float32(Tensor(shape: dims, elements: try floats())).converted(to: target)
  }
}
