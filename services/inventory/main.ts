/** Entrypoint of the inventory service (:5002). */
import { loadConfig } from "@campus/shared/config";
import { startService } from "@campus/shared/service";
import { createInventoryService } from "./app.ts";

await startService(loadConfig("inventory"), createInventoryService);
