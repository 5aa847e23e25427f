import {
  type GuestContext,
  HostMemory,
  ManualClock,
  SnpFirmware,
  TmpmDriver,
  TmpmEngine,
} from "@smashlab/hw-engine";
import { AmdIommu, Iommufd, Memfd, type PhysDevice, PhysMemory } from "@smashlab/iommufd";
import type { IoPageTable } from "@smashlab/pagetable";
import { Rmp } from "@smashlab/rmp";
import { G1, K4, M2, PAGES_PER_REGION } from "../units.js";
import { type HazardAttribution, TrustedDevice } from "./trusted-device.js";

/** The guest's ASID (any of 1..1023 would do; 5 matches the packages' own examples). */
export const GUEST_ASID = 5;

/**
 * Where the guest's memory starts in GPA (= IOVA) space: above 4G, so one
 * contiguous range stays clear of the 32-bit PCI hole and of the AMD IOMMU's
 * reserved MSI window (0xfee00000) below 4G.
 */
export const GUEST_GPA = 4 * G1;

/**
 * The largest guest the playground builds: the guest's IOVA range must end
 * below the AMD IOMMU's reserved HyperTransport window (0xfd00000000), and
 * the run must stay quick.
 */
export const MAX_GUEST_BYTES = 256 * G1;

/** What was still allocated after a machine was torn down. */
export interface Leftovers {
  /** IO page-table pages still allocated (a leak if not 0). */
  tablePages: number;
  /** Guest pages iommufd still has pinned. */
  pinnedPages: number;
  /** iommufd objects still alive. */
  objects: number;
}

/** Options of {@link Machine}. */
export interface MachineOptions {
  /** Guest memory in bytes, a multiple of 2M. */
  size: number;
  /** How trusted-DMA failures are tied to hazards. */
  attribute?: HazardAttribution;
}

/**
 * One host with one confidential VM and one trusted device, assembled from the
 * real packages: an iommufd context with the AMD IOMMU driver, the guest's
 * memory as a 2M-folio memfd, the RMP, the SNP firmware with the guest's
 * context page, and the TMPM engine with its Linux driver. The engine edits
 * the very table pages iommufd's domains allocate from (`fd.memory`), as the
 * driver's PTE page must belong to the domain's allocator.
 *
 * IOMMU objects (IOAS, HWPT, attach, mappings) are made by the flow's steps,
 * which set {@link Machine.ioasId} and {@link Machine.hwptId}.
 */
export class Machine {
  readonly asid = GUEST_ASID;
  /** First GPA (= IOVA) of the guest's memory. */
  readonly gpa = GUEST_GPA;
  /** Bytes of guest memory. */
  readonly size: number;
  /** Host physical address of the guest's first page (the memfd's memory). */
  readonly hpa: number;
  readonly fd: Iommufd;
  readonly iommu = new AmdIommu();
  /** The TDISP device as the IOMMU driver sees it. */
  readonly tdi: PhysDevice;
  /** The guest's memory (a memfd of 2M folios, standing in for guest_memfd). */
  readonly file: Memfd;
  readonly rmp = new Rmp();
  readonly firmware: SnpFirmware;
  readonly clock = new ManualClock();
  readonly engine: TmpmEngine;
  readonly driver: TmpmDriver;
  /** The SNP guest-context page that names the guest in engine commands. */
  readonly gctx: GuestContext;
  /** The trusted device's DMA, through the IOMMU and the RMP check. */
  readonly device: TrustedDevice;
  /** iommufd device ID (0 until bound). */
  devId = 0;
  /** The IOAS (0 until step 1). */
  ioasId = 0;
  /** The HWPT the device is attached to (0 until step 2). */
  hwptId = 0;
  private readonly touched = new Set<number>();
  private tornDown: Leftovers | null = null;

  constructor(options: MachineOptions) {
    this.size = options.size;
    const phys = new PhysMemory();
    this.fd = new Iommufd({ phys });
    this.file = new Memfd({ phys, size: options.size, folioSize: M2 });
    this.hpa = this.file.physBase;
    this.tdi = { name: "tdi0", iommu: this.iommu, group: {}, flags: 0 };
    // Snapshots count a region's 4K entries only once the RMP has touched it.
    this.rmp.subscribe((c) => {
      for (let spa = c.spa; spa < c.spa + c.length; spa += M2)
        this.touched.add(Math.floor(spa / M2));
    });
    this.firmware = new SnpFirmware(this.rmp, new HostMemory());
    this.engine = new TmpmEngine({
      firmware: this.firmware,
      tables: this.fd.memory,
      clock: this.clock,
      completion: "timed",
    });
    this.driver = new TmpmDriver(this.engine);
    this.driver.init();
    this.gctx = this.firmware.createGuestContext(this.asid);
    this.device = new TrustedDevice(
      this.tdi.name,
      this.rmp,
      this.asid,
      this.engine,
      options.attribute,
    );
  }

  /** 2M regions of guest memory. */
  get regions(): number {
    return this.size / M2;
  }

  /** The IO page table the device walks and the engine edits (null before step 2). */
  get domain(): IoPageTable | null {
    return this.hwptId === 0 ? null : this.fd.hwptDomain(this.hwptId).table;
  }

  /** The domain, once it exists. */
  requireDomain(): IoPageTable {
    const d = this.domain;
    if (d === null) throw new Error("the flow needs the HWPT (step 2) here");
    return d;
  }

  /** GPA (= IOVA) of page `page` of region `region`. */
  gpaOf(region: number, page = 0): number {
    return this.gpa + region * M2 + page * K4;
  }

  /** Host physical address of page `page` of region `region`. */
  hpaOf(region: number, page = 0): number {
    return this.hpa + region * M2 + page * K4;
  }

  /** True once any RMP instruction changed an entry of the 2M region at host address `spa`. */
  rmpTouched(spa: number): boolean {
    return this.touched.has(Math.floor(spa / M2));
  }

  /** 4K pages of guest memory. */
  get pages(): number {
    return this.regions * PAGES_PER_REGION;
  }

  /**
   * Shuts the engine down and closes iommufd (which destroys the HWPT, the
   * IOAS and the device binding), then reports what is left. Idempotent.
   */
  teardown(): Leftovers {
    if (this.tornDown !== null) return this.tornDown;
    this.driver.shutdown();
    this.fd.close();
    const s = this.fd.stats();
    this.tornDown = { tablePages: s.tablePages, pinnedPages: s.pinnedPages, objects: s.objects };
    return this.tornDown;
  }
}
