// placeholder until daemon.cpp lands
namespace ipopsec {}
