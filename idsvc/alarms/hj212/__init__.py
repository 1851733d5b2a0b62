"""HJ 212-2017 (污染物在线监控（监测）系统数据传输标准): the frame codec, the TCP server for monitoring
stations, and what their data means (limits, faults). docs/sensors.md cites the standard's sections."""
