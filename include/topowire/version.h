/* version.h - the topowire version string. */
#ifndef TOPOWIRE_VERSION_H
#define TOPOWIRE_VERSION_H

#ifndef TW_VERSION
#define TW_VERSION "0.1.0"
#endif

#endif
