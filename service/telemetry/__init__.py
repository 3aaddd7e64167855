"""What the service says about itself: Prometheus metrics, JSON logs, the access log and the capture of
grpc core's stderr. It observes the other rooms and is imported only by the runtime that wires it in.
"""
