/// The shape of an attention operand, `(batch, seqlen, heads, headDim)`.
public struct TensorShape: Hashable, Sendable, Codable, CustomStringConvertible {
  public var batch: Int
  public var seqlen: Int
  public var heads: Int
  public var headDim: Int
  public init(batch: Int, seqlen: Int, heads: Int, headDim: Int) {
    self.batch = batch
    self.seqlen = seqlen
    self.heads = heads
    self.headDim = headDim
  }
  public var dimensions: [Int] { [batch, seqlen, heads, headDim] }
  public var elementCount: Int { batch * seqlen * heads * headDim }
  public var description: String { "(\(batch), \(seqlen), \(heads), \(headDim))" }
}

/// Element strides of a `(batch, seqlen, heads, headDim)` view. The headDim axis is
/// always contiguous (stride 1), as the kernels load whole rows.
public struct TensorStrides: Hashable, Sendable {
  public var batch: Int
  public var seqlen: Int
  public var head: Int
  public init(batch: Int, seqlen: Int, head: Int) {
    self.batch = batch
    self.seqlen = seqlen
    self.head = head
  }
  /// C order for `(batch, seqlen, heads, headDim)`.
  public static func contiguous(_ s: TensorShape) -> TensorStrides {
    TensorStrides(batch: s.seqlen * s.heads * s.headDim, seqlen: s.heads * s.headDim, head: s.headDim)
  }
  /// The `(batch, heads, seqlen, headDim)` memory order, viewed as `(batch, seqlen, heads, headDim)`.
  public static func headsMajor(_ s: TensorShape) -> TensorStrides {
    TensorStrides(batch: s.heads * s.seqlen * s.headDim, seqlen: s.headDim, head: s.seqlen * s.headDim)
  }
}

/// A read-only strided view of a `(batch, seqlen, heads, headDim)` tensor in host memory.
/// It does not own its memory: the owner must outlive every use of the view.
public struct TensorView<Scalar: TensorScalar>: @unchecked Sendable {
  public let base: UnsafePointer<Scalar>
  public let shape: TensorShape
  public let strides: TensorStrides
  public init(base: UnsafePointer<Scalar>, shape: TensorShape, strides: TensorStrides? = nil) {
    self.base = base
    self.shape = shape
    self.strides = strides ?? .contiguous(shape)
  }
  /// The first element of row `(b, s, h)`; the row's `headDim` elements follow contiguously.
  @inlinable public func row(_ b: Int, _ s: Int, _ h: Int) -> UnsafePointer<Scalar> {
    base + (b * strides.batch + s * strides.seqlen + h * strides.head)
  }
  @inlinable public subscript(b: Int, s: Int, h: Int, d: Int) -> Scalar { row(b, s, h)[d] }
}

/// A writable strided view of a `(batch, seqlen, heads, headDim)` tensor in host memory.
public struct MutableTensorView<Scalar: TensorScalar>: @unchecked Sendable {
  public let base: UnsafeMutablePointer<Scalar>
  public let shape: TensorShape
  public let strides: TensorStrides
  public init(base: UnsafeMutablePointer<Scalar>, shape: TensorShape, strides: TensorStrides? = nil) {
    self.base = base
    self.shape = shape
    self.strides = strides ?? .contiguous(shape)
  }
  @inlinable public func row(_ b: Int, _ s: Int, _ h: Int) -> UnsafeMutablePointer<Scalar> {
    base + (b * strides.batch + s * strides.seqlen + h * strides.head)
  }
  public var readOnly: TensorView<Scalar> { TensorView(base: base, shape: shape, strides: strides) }
}

/// A C-ordered tensor of any rank in 64-byte-aligned host memory that it owns.
/// Its bytes are counted by `HostMemory` while it lives.
public final class Tensor<Scalar: TensorScalar>: @unchecked Sendable {
  public let shape: [Int]
  public let count: Int
  public let pointer: UnsafeMutablePointer<Scalar>

  /// A tensor with every element set to `value`.
  public init(shape: [Int], repeating value: Scalar) {
    self.shape = shape
    count = shape.reduce(1, *)
    pointer = HostMemory.allocate(Scalar.self, count: count)
    pointer.initialize(repeating: value, count: count)
  }

  /// A tensor holding `elements` (C order); `elements.count` must equal the product of `shape`.
  public convenience init(shape: [Int], elements: [Scalar]) {
    precondition(shape.reduce(1, *) == elements.count, "element count does not match shape")
    self.init(shape: shape, repeating: Scalar(0))
    elements.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: count) }
  }

  /// Uniform random elements in `range` from a seeded generator (reproducible).
  public convenience init(shape: [Int], randomIn range: ClosedRange<Float>, seed: UInt64) {
    self.init(shape: shape, repeating: Scalar(0))
    var generator = SeededGenerator(seed: seed)
    for i in 0..<count { pointer[i] = Scalar(Float.random(in: range, using: &generator)) }
  }

  deinit {
    pointer.deinitialize(count: count)
    HostMemory.deallocate(pointer, count: count)
  }

  public var elements: [Scalar] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
  public var byteCount: Int { count * MemoryLayout<Scalar>.stride }

  /// The tensor as `(batch, seqlen, heads, headDim)`; throws unless it has rank 4.
  public func view(named name: String = "tensor") throws(AttentionError) -> TensorView<Scalar> {
    try mutableView(named: name).readOnly
  }
  public func mutableView(named name: String = "tensor") throws(AttentionError) -> MutableTensorView<Scalar> {
    guard shape.count == 4 else {
      throw .shapeMismatch(argument: name, shape: shape, expected: "(batch, seqlen, heads, headDim)")
    }
    return MutableTensorView(
      base: pointer, shape: TensorShape(batch: shape[0], seqlen: shape[1], heads: shape[2], headDim: shape[3]))
  }
}

/// A tensor of any storage dtype, as read from a file or handed between backends.
public enum AnyTensor: Sendable {
  case float32(Tensor<Float>)
  case float16(Tensor<Float16>)
  case bfloat16(Tensor<BFloat16>)

  public init<S: TensorScalar>(_ tensor: Tensor<S>) {
    switch tensor {
    case let t as Tensor<Float>: self = .float32(t)
    case let t as Tensor<Float16>: self = .float16(t)
    case let t as Tensor<BFloat16>: self = .bfloat16(t)
    default: fatalError("unreachable: TensorScalar is implemented by Float, Float16 and BFloat16 only")
    }
  }

  public var dtype: DType {
    switch self {
    case .float32: .float32
    case .float16: .float16
    case .bfloat16: .bfloat16
    }
  }
  public var shape: [Int] {
    switch self {
    case let .float32(t): t.shape
    case let .float16(t): t.shape
    case let .bfloat16(t): t.shape
    }
  }
  /// Every element converted to Float.
  public func floats() -> [Float] {
    switch self {
    case let .float32(t): t.elements
    case let .float16(t): t.elements.map(\.floatValue)
    case let .bfloat16(t): t.elements.map(\.floatValue)
    }
  }
  /// A copy converted to `dtype` (rounded to nearest).
  public func converted(to dtype: DType) -> AnyTensor {
    if dtype == self.dtype { return self }
    let values = floats()
    switch dtype {
    case .float32: return .float32(Tensor(shape: shape, elements: values))
    case .float16: return .float16(Tensor(shape: shape, elements: values.map { Float16($0) }))
    case .bfloat16: return .bfloat16(Tensor(shape: shape, elements: values.map { BFloat16($0) }))
    }
  }
}
