import FlashAttention

extension CUDADriver {
  /// The `TensorMapEncoder` the Hopper planner needs, backed by this driver's
  /// `cuTensorMapEncodeTiled`. Use it as
  /// `HopperForwardPlanner.plan(…, encodeTensorMap: driver.hopperTensorMapEncoder())`;
  /// the device context that owns the tensors must be current when `plan` runs.
  public func hopperTensorMapEncoder() -> TensorMapEncoder {
    { [self] (request: TensorMapRequest) throws(AttentionError) -> [UInt8] in
      guard let dataType = TensorMapDataType(rawValue: request.dataType),
        let swizzle = TensorMapSwizzle(rawValue: request.swizzle)
      else {
        throw .invalidArgument(
          argument: "tensor map", value: "dataType \(request.dataType) swizzle \(request.swizzle)",
          expected: "a CUtensorMapDataType and CUtensorMapSwizzle value")
      }
      do throws(CUDAError) {
        return try self.encodeTiledTensorMap(
          dataType: dataType, address: request.globalAddress, globalDimensions: request.globalDims,
          globalStridesBytes: request.globalStrides, boxDimensions: request.boxDims,
          elementStrides: request.elementStrides, swizzle: swizzle
        ).bytes
      } catch {
        throw error.attentionError
      }
    }
  }
}
